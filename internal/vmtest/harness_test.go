package vmtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestStepsCmdlineDisk runs several steps in one boot, passes extra kernel
// arguments, and shows that a persistent disk keeps what a first boot wrote
// for a second boot.
func TestStepsCmdlineDisk(t *testing.T) {
	k := testenv.RequireKernel(t)
	disk, err := NewDisk(t.TempDir(), 64)
	if err != nil {
		testenv.Missing(t, err)
	}
	first := RunT(t, Config{
		Kernel:  k,
		Disk:    disk,
		Cmdline: []string{"kelp.test=first"},
		Files:   []File{{Path: "/root/payload.sh", Data: []byte("echo payload ran\n"), Mode: 0o755}},
		Steps: []Step{
			{Name: "cmdline", Shell: "cat /proc/cmdline"},
			{Name: "payload", Shell: "/root/payload.sh"},
			{Name: "write", Shell: "echo survived > /persist/mark && sync"},
			{Name: "fails", Shell: "echo to-stderr >&2; exit 3"},
		},
	})
	if got := first.MustStep(t, "cmdline").Stdout; !strings.Contains(got, "kelp.test=first") {
		t.Errorf("extra kernel argument missing from /proc/cmdline: %q", got)
	}
	if got := first.MustStep(t, "payload").Stdout; got != "payload ran\n" {
		t.Errorf("payload step stdout = %q", got)
	}
	first.MustStep(t, "write")
	if s, _ := first.Step("fails"); s.Exit != 3 || s.Stderr != "to-stderr\n" {
		t.Errorf("failing step = %+v, want exit 3 with stderr", s)
	}
	if len(first.Steps) != 4 {
		t.Errorf("got %d step results, want 4", len(first.Steps))
	}

	second := RunT(t, Config{Kernel: k, Disk: disk, Steps: []Step{{Name: "read", Shell: "cat /persist/mark"}}})
	if got := second.MustStep(t, "read").Stdout; got != "survived\n" {
		t.Errorf("second boot read %q from the persistent disk, want %q", got, "survived\n")
	}
}

// TestGuestPanic: a guest kernel panic ends the boot at once with one line
// naming the panic, and the console holds the details.
func TestGuestPanic(t *testing.T) {
	k := testenv.RequireKernel(t)
	res, err := Run(context.Background(), Config{
		Kernel:  k,
		Timeout: 6 * time.Minute,
		Steps:   []Step{{Name: "crash", Shell: "echo c > /proc/sysrq-trigger"}},
	})
	var be *BootError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "guest kernel panicked") {
		t.Fatalf("want a guest panic error, got %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("boot error is not one line: %q", err)
	}
	if !strings.Contains(res.Console, "sysrq triggered crash") {
		t.Errorf("console lacks the crash details")
	}
	// Well before the 6-minute timeout, even on a loaded machine.
	if res.Elapsed > 3*time.Minute {
		t.Errorf("panicked guest took %s to end", res.Elapsed)
	}
}

// TestExpectedCrash: a boot told that a step crashes the guest kernel
// ends without error at that crash, with the panic line and the steps
// before it; one whose named step finishes is an error, and so is a
// crash in another step.
func TestExpectedCrash(t *testing.T) {
	k := testenv.RequireKernel(t)
	res, err := Run(context.Background(), Config{
		Kernel:  k,
		Timeout: 6 * time.Minute,
		CrashIn: "crash",
		Steps:   []Step{{Name: "before", Shell: "echo up"}, {Name: "crash", Shell: "echo c > /proc/sysrq-trigger"}},
	})
	if err != nil {
		t.Fatalf("expected crash: %v", err)
	}
	if !strings.Contains(res.Panic, "sysrq triggered crash") {
		t.Errorf("panic line %q", res.Panic)
	}
	if s, ok := res.Step("before"); !ok || strings.TrimSpace(s.Stdout) != "up" {
		t.Errorf("step before the crash: %+v", s)
	}
	_, err = Run(context.Background(), Config{
		Kernel:  k,
		Timeout: 6 * time.Minute,
		CrashIn: "calm",
		Steps:   []Step{{Name: "calm", Shell: "true"}, {Name: "crash", Shell: "echo c > /proc/sysrq-trigger"}},
	})
	if err == nil || !strings.Contains(err.Error(), "not in step calm as expected") {
		t.Errorf("a crash in another step than the one named: %v", err)
	}
	_, err = Run(context.Background(), Config{
		Kernel:  k,
		Timeout: 6 * time.Minute,
		CrashIn: "calm",
		Steps:   []Step{{Name: "calm", Shell: "true"}},
	})
	if err == nil || !strings.Contains(err.Error(), "expected to crash") {
		t.Errorf("no crash where one was expected: %v", err)
	}
}

// TestGuestHang: a guest that never finishes is killed at the boot
// timeout, and the error says where it hung.
func TestGuestHang(t *testing.T) {
	k := testenv.RequireKernel(t)
	timeout := 90 * time.Second
	res, err := Run(context.Background(), Config{
		Kernel:  k,
		Timeout: timeout,
		Steps: []Step{
			{Name: "first", Shell: "true"},
			{Name: "hang", Shell: "sleep 1000"},
		},
	})
	if err == nil || !strings.Contains(err.Error(), "timed out after 1m30s (after step first)") {
		t.Fatalf("want a timeout naming the last finished step, got %v", err)
	}
	if res.Elapsed > timeout+20*time.Second {
		t.Errorf("hung guest ran %s, past its %s timeout", res.Elapsed, timeout)
	}
}

// TestMissingPieces: missing QEMU or kernel image is one clear error
// naming the package to install, before anything is started.
func TestMissingPieces(t *testing.T) {
	k := testenv.RequireKernel(t)
	bad := *k
	bad.Image = "/nonexistent/vmlinuz"
	_, err := Run(context.Background(), Config{Kernel: &bad})
	var missing *testenv.ErrMissing
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "linux-image-"+k.Release) {
		t.Errorf("missing kernel image: got %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = Run(context.Background(), Config{Kernel: k})
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "qemu-system-x86") {
		t.Errorf("missing qemu: got %v", err)
	}
}

// BenchmarkBoot measures boot to power-off of a guest with no steps.
func BenchmarkBoot(b *testing.B) {
	k := testenv.RequireKernel(b)
	if _, err := base(k); err != nil { // image building is not the boot
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Run(context.Background(), Config{Kernel: k}); err != nil {
			b.Fatal(err)
		}
	}
}
