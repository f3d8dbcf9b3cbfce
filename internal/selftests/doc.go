// Package selftests proves kelp's load, unload, list, info and force on the
// real Debian kernel under QEMU. Its tests re-create every scenario of the
// kernel's own livepatch selftests (tools/testing/selftests/livepatch in
// Linux 6.1) with each livepatch load, disable and unload going through
// kelp, and compare the kernel log with the transcripts those scripts
// expect, read from the installed kernel source. The test modules
// (lib/livepatch/test_klp_*.c) are built from that source at test time.
//
// The package holds no code besides its tests.
package selftests
