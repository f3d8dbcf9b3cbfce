/*
 * A child enters an rseq critical section whose descriptor carries an
 * unknown flag and takes a signal inside it. On the way back to user
 * space the kernel's fixup (__rseq_handle_notify_resume) reads the flag:
 * rseq_warn_flags (a .part clone with a .cold piece) warns once and the
 * child is killed with SIGSEGV. Exits 0 when the child died so, 2
 * otherwise.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* kelp_cs_enter stores cs into *slot (rseq_cs of the thread's struct
 * rseq), then spins between kelp_cs_start and kelp_cs_end: inside the
 * critical section. The abort handler, after its signature, returns. */
void kelp_cs_enter(struct rseq_cs *cs, uint64_t *slot);
extern char kelp_cs_start[], kelp_cs_end[], kelp_cs_abort[];
__asm__(
	".pushsection .text\n"
	".globl kelp_cs_enter\n"
	".type kelp_cs_enter, @function\n"
	"kelp_cs_enter:\n"
	"	movq %rdi, (%rsi)\n"
	".globl kelp_cs_start\n"
	"kelp_cs_start:\n"
	"	jmp kelp_cs_start\n"
	".globl kelp_cs_end\n"
	"kelp_cs_end:\n"
	"	.byte 0x0f, 0xb9, 0x3d\n"
	"	.long 0x53053053\n" /* RSEQ_SIG */
	".globl kelp_cs_abort\n"
	"kelp_cs_abort:\n"
	"	ret\n"
	".popsection\n");

static struct rseq own __attribute__((aligned(32)));
static struct rseq_cs cs;

static void on_alarm(int sig)
{
	(void)sig;
}

static int child(void)
{
	struct rseq *r;
	struct itimerval every = { { 0, 20000 }, { 0, 20000 } };

	if (__rseq_size > 0) {
		r = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	} else {
		/* The C library did not register: register our own. */
		if (syscall(SYS_rseq, &own, sizeof own, 0, RSEQ_SIG) != 0) {
			perror("rseq");
			return 3;
		}
		r = &own;
	}
	cs.version = 0;
	cs.flags = 1u << 3; /* not a RSEQ_CS_FLAG_NO_RESTART_ON_* bit */
	cs.start_ip = (uintptr_t)kelp_cs_start;
	cs.post_commit_offset = (uintptr_t)kelp_cs_end - (uintptr_t)kelp_cs_start;
	cs.abort_ip = (uintptr_t)kelp_cs_abort;
	signal(SIGALRM, on_alarm);
	if (setitimer(ITIMER_REAL, &every, NULL) != 0) {
		perror("setitimer");
		return 3;
	}
	kelp_cs_enter(&cs, (uint64_t *)&r->rseq_cs);
	fputs("the critical section was aborted, not refused\n", stderr);
	return 4;
}

int main(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return perror("fork"), 2;
	if (pid == 0)
		_exit(child());
	/* A kernel that never fixes the section up leaves the child
	 * spinning: it is killed after 10 s. */
	for (int i = 0; i < 1000; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) {
				puts("child killed by SIGSEGV");
				return 0;
			}
			fprintf(stderr, "child ended with status 0x%x\n", status);
			return 2;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fputs("child still in its critical section after 10 s\n", stderr);
	return 2;
}
