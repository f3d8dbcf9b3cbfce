package selftests

import (
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

// TestUnpatchStall proves in one boot that a stalled unpatching transition
// is reported and reversed back to patched: a task sleeping inside the
// replacement function blocks kelp unload, which names it with its stack,
// re-enables the patch and exits 3 with the patch still applied; once the
// task has left the function, kelp unload succeeds.
func TestUnpatchStall(t *testing.T) {
	k := testenv.RequireKernel(t)
	ko := buildSleeper(t, k)
	const (
		sysfs = "/sys/kernel/livepatch/" + sleeper
		param = "/sys/module/" + sleeper + "/parameters/hold"
	)
	// The pid of the reader is kept in /tmp/cat.pid across steps.
	var catPID string
	checks := []check{
		{"setup", setupStep, wantExit(0)},
		sleeperLoad(),
		sleeperHold(&catPID),
		{"stall: unload times out and reverts", "kelp unload --timeout 3s " + sleeper, func(t *testing.T, r vmtest.StepResult) {
			t.Logf("stalled unload, reverted:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
			if catPID == "" {
				t.Fatal("no reader pid")
			}
			wantExit(3, sleeper+": unpatching transition timed out after ", "1 blocking task: cat pid "+catPID+" in "+sleeperFn, "reverted, the patch stays applied")(t, r)
			for _, w := range []string{
				"disabling " + sleeper,
				"1 task has not switched to the unpatched state after ",
				"  pid " + catPID + " tid " + catPID + " cat, patch state patched\n",
				"] " + sleeperFn + "+0x",
				"reverting: reversing the unpatching transition of " + sleeper,
			} {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			waitedAtLeast(t, r.Stderr, "unpatched state after ", 3)
			if strings.Contains(r.Stderr, "removing module") {
				t.Errorf("the module was removed after a reverted unload")
			}
		}},
		{"stall: still patched", "cat " + sysfs + "/enabled " + sysfs + "/transition && grep -c '^" + sleeper + " ' /proc/modules && kill -0 $(cat /tmp/cat.pid) && echo reader sleeping", stdoutIs("1\n0\n1\nreader sleeping")},
		// Clearing hold lets the reader finish; the unload then succeeds.
		{"release: reader finishes", "echo N > " + param + "\n" +
			// The reader's parent shell is gone: it ends as a zombie
			// of the guest init, or is reaped.
			"pid=$(cat /tmp/cat.pid); running() { [ -d /proc/$pid ] && ! grep -q '^[0-9]* (cat) Z' /proc/$pid/stat; }\n" +
			"for i in $(seq 200); do running || break; sleep 0.05; done\n" +
			"! running && cat /tmp/cat.out", stdoutIs(sleeperOut)},
		{"release: unload", "kelp unload " + sleeper, func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			if !strings.Contains(r.Stdout, sleeper+": unpatched and removed in ") {
				t.Errorf("stdout %q", r.Stdout)
			}
			t.Logf("unload after the reader left:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
		}},
		{"release: gone", `[ ! -e ` + sysfs + ` ] && [ -z "$(ls /sys/kernel/livepatch)" ] && ! grep -q '^` + sleeper + ` ' /proc/modules && ! grep -q sleeper /proc/cmdline && echo gone`, stdoutIs("gone")},
	}
	var steps []vmtest.Step
	for _, c := range checks {
		steps = append(steps, vmtest.Step{Name: c.name, Shell: c.shell, Timeout: 2 * time.Minute})
	}
	files := []vmtest.File{{Path: guestKO + "/" + sleeper + ".ko", Host: ko}}
	res := vmtest.RunT(t, vmtest.Config{Kernel: k, Files: files, Steps: steps, Timeout: 5 * time.Minute})
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r, ok := res.Step(c.name)
			if !ok {
				t.Fatal("step did not run")
			}
			c.test(t, r)
		})
	}
}
