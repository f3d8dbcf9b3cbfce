package vmtest

import (
	"context"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// waitTransition is a guest shell snippet that waits (up to 30 s) until
// patch $1 is no longer in transition.
const waitTransition = `wait_transition() {
	for i in $(seq 300); do
		t=$(cat /sys/kernel/livepatch/$1/transition 2>/dev/null || echo 0)
		[ "$t" = 0 ] && return 0
		sleep 0.1
	done
	echo "patch $1 still in transition after 30s" >&2; return 1
}
`

// TestSampleLivepatch builds the kernel's own samples/livepatch module out
// of tree against the installed headers, loads it in the guest, sees
// /proc/cmdline change, disables it, sees the original back and unloads it.
func TestSampleLivepatch(t *testing.T) {
	k := testenv.RequireKernel(t)
	ko := buildSample(t, k)
	res := RunT(t, Config{
		Kernel: k,
		Files:  []File{{Path: "/root/livepatch-sample.ko", Host: ko}},
		Steps: []Step{
			{Name: "before", Shell: "cat /proc/cmdline"},
			{Name: "load", Shell: waitTransition + "insmod /root/livepatch-sample.ko && wait_transition livepatch_sample && cat /sys/kernel/livepatch/livepatch_sample/enabled"},
			{Name: "patched", Shell: "cat /proc/cmdline"},
			{Name: "disable", Shell: waitTransition + "echo 0 > /sys/kernel/livepatch/livepatch_sample/enabled && wait_transition livepatch_sample"},
			{Name: "restored", Shell: "cat /proc/cmdline"},
			{Name: "rmmod", Shell: "rmmod livepatch_sample && ! grep -w livepatch_sample /proc/modules"},
		},
	})
	before := res.MustStep(t, "before").Stdout
	if !strings.Contains(before, "console=ttyS0") {
		t.Fatalf("/proc/cmdline before patching = %q, want the boot command line", before)
	}
	if got := strings.TrimSpace(res.MustStep(t, "load").Stdout); got != "1" {
		t.Errorf("after insmod, enabled = %q, want 1", got)
	}
	if got := strings.TrimSpace(res.MustStep(t, "patched").Stdout); got != "this has been live patched" {
		t.Fatalf("/proc/cmdline while patched = %q", got)
	}
	res.MustStep(t, "disable")
	if got := res.MustStep(t, "restored").Stdout; got != before {
		t.Fatalf("/proc/cmdline after disabling = %q, want %q", got, before)
	}
	res.MustStep(t, "rmmod")
	for _, want := range []string{"livepatch: enabling patch 'livepatch_sample'", "'livepatch_sample': patching complete", "'livepatch_sample': unpatching complete"} {
		if !strings.Contains(res.Dmesg, want) {
			t.Errorf("guest kernel log lacks %q", want)
		}
	}
}

// buildSample builds the kernel's samples/livepatch module.
func buildSample(t testing.TB, k *testenv.Kernel) string {
	t.Helper()
	ko, err := k.SampleLivepatch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ko
}
