/*
 * Makes uid 4242 have a user_struct (a child that setuid(4242)s and
 * waits), then looks it up: getpriority(PRIO_USER, 4242) calls find_user,
 * whose uid_hash_find (an .isra clone) the patch makes log the find.
 * Exits 0 when the lookup ran, 2 on a setup failure.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	int ready[2], done[2], status;
	char c;
	pid_t pid;

	if (pipe(ready) || pipe(done))
		return perror("pipe"), 2;
	pid = fork();
	if (pid < 0)
		return perror("fork"), 2;
	if (pid == 0) {
		close(ready[0]);
		close(done[1]);
		if (setuid(4242))
			return perror("setuid"), 1;
		if (write(ready[1], "r", 1) != 1)
			return 1;
		/* Holds uid 4242's user_struct until the parent closes. */
		(void)read(done[0], &c, 1);
		return 0;
	}
	close(ready[1]);
	close(done[0]);
	if (read(ready[0], &c, 1) != 1) {
		fputs("the child did not become uid 4242\n", stderr);
		return 2;
	}
	errno = 0;
	int prio = getpriority(PRIO_USER, 4242);
	int err = errno;
	close(done[1]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fputs("the child failed\n", stderr), 2;
	if (prio == -1 && err != 0) {
		fprintf(stderr, "getpriority: errno %d\n", err);
		return 2;
	}
	printf("uid 4242: priority %d\n", prio);
	return 0;
}
