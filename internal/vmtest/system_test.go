package vmtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/internal/testenv"
)

// SystemT returns the cached Debian system image, building it when needed.
func SystemT(t testing.TB, k *testenv.Kernel) *SystemImage {
	t.Helper()
	start := time.Now()
	img, err := System(context.Background(), k)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	t.Logf("system image of %s ready in %.1fs (built when not cached)", k.Release, time.Since(start).Seconds())
	return img
}

// TestSystemBoot boots the debootstrapped Debian system with systemd and
// shows that its state survives a reboot on the same disk: Debian 12's
// bookworm with its 6.1 kernel, Debian 13's trixie with its 6.12 kernel.
func TestSystemBoot(t *testing.T) {
	for _, c := range []struct {
		name string
		find func() (*testenv.Kernel, error)
	}{
		{"6.1", testenv.DefaultKernel},
		{"6.12", func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") }},
	} {
		t.Run(c.name, func(t *testing.T) { testSystemBoot(t, testenv.RequireKernelOf(t, c.find)) })
	}
}

func testSystemBoot(t *testing.T, k *testenv.Kernel) {
	img := SystemT(t, k)
	disk, err := NewSystemDisk(t.TempDir(), img)
	if err != nil {
		t.Fatal(err)
	}
	first := RunT(t, Config{
		Kernel:  k,
		System:  disk,
		Timeout: 8 * time.Minute,
		Files:   []File{{Path: "/kelp/hello.txt", Data: []byte("payload\n")}},
		Steps: []Step{
			{Name: "init", Shell: "readlink /proc/1/exe"},
			{Name: "running", Shell: "systemctl is-system-running --wait || systemctl --failed --no-legend"},
			{Name: "modules", Shell: "ls /lib/modules"},
			{Name: "release", Shell: ". /etc/os-release && echo $VERSION_CODENAME"},
			{Name: "payload", Shell: "cat /kelp/hello.txt"},
			{Name: "write", Shell: "echo kept > /var/lib/mark && sync"},
		},
	})
	if got := strings.TrimSpace(first.MustStep(t, "init").Stdout); !strings.HasSuffix(got, "systemd") {
		t.Errorf("PID 1 is %q, want systemd", got)
	}
	if s, _ := first.Step("running"); !strings.Contains(s.Stdout, "running") {
		t.Errorf("system state after boot: %q %q", s.Stdout, s.Stderr)
	}
	if got := strings.TrimSpace(first.MustStep(t, "modules").Stdout); got != k.Release {
		t.Errorf("/lib/modules holds %q, want %s", got, k.Release)
	}
	if suite, _ := buildroot.SuiteOf(k.Release); strings.TrimSpace(first.MustStep(t, "release").Stdout) != suite {
		t.Errorf("the system of kernel %s is Debian %q, want %s", k.Release, first.MustStep(t, "release").Stdout, suite)
	}
	if got := first.MustStep(t, "payload").Stdout; got != "payload\n" {
		t.Errorf("payload file = %q", got)
	}
	first.MustStep(t, "write")
	second := RunT(t, Config{Kernel: k, System: disk, Timeout: 8 * time.Minute,
		Steps: []Step{{Name: "read", Shell: "cat /var/lib/mark"}}})
	if got := second.MustStep(t, "read").Stdout; got != "kept\n" {
		t.Errorf("after reboot /var/lib/mark = %q", got)
	}
}

// TestSystemUnknownRelease: a kernel of no Debian release kelp knows gets
// no system image, and the error names the kernel.
func TestSystemUnknownRelease(t *testing.T) {
	k := &testenv.Kernel{Release: "5.10.0-30-amd64"}
	_, err := System(context.Background(), k)
	if err == nil || !strings.Contains(err.Error(), "kernel 5.10.0-30-amd64 is of no Debian release") {
		t.Errorf("system image of a Debian 11 kernel: got %v", err)
	}
}
