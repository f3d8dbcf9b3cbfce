// Package sys is kelp's only door to the running system: raw system calls
// (sys_linux.go; other systems get a stub that fails, so the packages that
// only read and write files build and test anywhere) and the kernel facts
// kelp reads from /proc (kernel.go). Every other package reaches the
// kernel through the functions here, so what kelp asks of the system is
// visible in one place and can be reviewed as a whole. Syscalls only the
// test guest makes (mount, reboot, ...) live next to that guest, in
// internal/vmtest/guestinit.
package sys
