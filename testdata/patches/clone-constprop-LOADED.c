/*
 * process_vm_readv of a pid no task has: the patched process_vm_rw_core
 * (compiled as a .constprop clone) fails with ENOENT, the original with
 * ESRCH. Prints the error's name; exits 2 if the call succeeds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

int main(void)
{
	char here[8], there[8] = "kelp";
	struct iovec local = { here, sizeof here }, remote = { there, sizeof there };

	/* Above PID_MAX_LIMIT (4194304): no task has this pid. */
	if (process_vm_readv(0x7fffffff, &local, 1, &remote, 1, 0) >= 0) {
		puts("read succeeded");
		return 2;
	}
	puts(errno == ENOENT ? "ENOENT" : errno == ESRCH ? "ESRCH" : strerror(errno));
	return 0;
}
