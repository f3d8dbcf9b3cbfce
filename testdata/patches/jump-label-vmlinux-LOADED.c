/*
 * Sleeps 1 ms on CLOCK_BOOTTIME_ALARM as a task named kelp-alarm: the
 * sleep runs alarmtimer_do_nsleep, which the patch makes log its end.
 * Exits 2 when the sleep fails (an alarm clock needs an RTC).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

int main(void)
{
	struct timespec ms = { 0, 1000000 };
	int err;

	if (prctl(PR_SET_NAME, "kelp-alarm") != 0)
		return perror("prctl"), 2;
	err = clock_nanosleep(CLOCK_BOOTTIME_ALARM, 0, &ms, NULL);
	if (err != 0) {
		fprintf(stderr, "clock_nanosleep: %s\n", strerror(err));
		return 2;
	}
	puts("slept 1 ms on the alarm clock");
	return 0;
}
