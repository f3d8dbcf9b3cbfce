package selftests

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

// sleeper is testdata/klp_sleeper.c: a livepatch of cmdline_proc_show
// whose replacement, sleeper_cmdline_proc_show, sleeps while the module
// parameter hold is set.
const (
	sleeper    = "klp_sleeper"
	sleeperFn  = "sleeper_cmdline_proc_show"
	sleeperOut = "klp_sleeper: this has been live patched"
)

// buildSleeper builds the sleeper module against k's headers.
func buildSleeper(t *testing.T, k *testenv.Kernel) string {
	t.Helper()
	src, err := os.ReadFile("testdata/" + sleeper + ".c")
	if err != nil {
		t.Fatal(err)
	}
	ko, err := k.BuildModule(context.Background(), testenv.ModuleSource{Name: sleeper, Files: map[string][]byte{sleeper + ".c": src}})
	if err != nil {
		t.Fatalf("build %s: %v", sleeper, err)
	}
	return ko
}

// sleeperLoad loads the sleeper and sees /proc/cmdline patched.
func sleeperLoad() check {
	return check{"load", "kelp load " + guestKO + "/" + sleeper + ".ko && cat /proc/cmdline", func(t *testing.T, r vmtest.StepResult) {
		wantExit(0)(t, r)
		if !strings.Contains(r.Stdout, sleeper+": patched in ") || !strings.HasSuffix(strings.TrimSpace(r.Stdout), sleeperOut) {
			t.Errorf("stdout %q", r.Stdout)
		}
	}}
}

// sleeperHold sets hold and starts a reader of /proc/cmdline that sleeps
// inside the replacement, so an unpatching transition cannot complete.
// The reader's pid goes to *catPID (and /tmp/cat.pid in the guest).
func sleeperHold(catPID *string) check {
	return check{"stall: reader inside the replacement", "echo Y > /sys/module/" + sleeper + "/parameters/hold\n" +
		"cat /proc/cmdline > /tmp/cat.out 2>&1 & pid=$!\n" +
		"echo $pid > /tmp/cat.pid\n" +
		"for i in $(seq 200); do grep -q " + sleeperFn + " /proc/$pid/stack && break; sleep 0.05; done\n" +
		"echo $pid; cat /proc/$pid/stack >&2; grep -q " + sleeperFn + " /proc/$pid/stack", func(t *testing.T, r vmtest.StepResult) {
		wantExit(0)(t, r)
		*catPID = strings.TrimSpace(r.Stdout)
		t.Logf("cat pid %s, kernel stack:\n%s", *catPID, r.Stderr)
	}}
}
