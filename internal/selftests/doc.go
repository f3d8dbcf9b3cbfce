// Package selftests proves kelp's load, unload, list, info and force on the
// real Debian kernels under QEMU. Its tests re-create every scenario of the
// kernel's own livepatch selftests (tools/testing/selftests/livepatch) of
// Linux 6.1 on Debian 12's kernel and of Linux 6.12 on Debian 13's, with
// each livepatch load, disable and unload going through kelp, and compare
// the kernel log with the transcripts those scripts expect, read from the
// kernel source. The test modules (6.1's lib/livepatch/test_klp_*.c,
// 6.12's tools/testing/selftests/livepatch/test_modules) are built from
// that source at test time by kbuild against the kernel's headers, 6.12's
// in the trixie build root with gcc-14.
//
// The package holds no code besides its tests.
package selftests
