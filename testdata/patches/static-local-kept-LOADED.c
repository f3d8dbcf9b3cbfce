/*
 * Sets the kernel's timezone (UTC, so the clock does not move) without
 * setting the time: settimeofday(NULL, tz) runs do_sys_settimeofday64's
 * timezone branch, which reads and clears its static local firsttime.
 * Exits 2 when the call fails.
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

int main(void)
{
	struct timezone utc = { 0, 0 };

	if (syscall(SYS_settimeofday, NULL, &utc) != 0)
		return perror("settimeofday"), 2;
	puts("timezone set");
	return 0;
}
