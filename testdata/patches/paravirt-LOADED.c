/*
 * Names itself kelp-exec and executes itself again: the exec switches the
 * task's memory in exec_mmap (inlined into begin_new_exec), which the
 * patch makes log the exec of a task of that name. Exits 2 when the exec
 * fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		puts("executed as kelp-exec");
		return 0;
	}
	if (prctl(PR_SET_NAME, "kelp-exec") != 0)
		return perror("prctl"), 2;
	execl("/proc/self/exe", "paravirt-helper", "again", (char *)NULL);
	perror("exec");
	return 2;
}
