package selftests

import (
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

// TestUnpatchForce proves in one boot the forced path of a stalled
// unpatching transition: --on-timeout force without --yes is a usage
// error that changes nothing; with --yes, a task sleeping inside the
// replacement function no longer blocks kelp unload, which warns, forces
// the transition and exits 4 (incomplete): the patch is gone, new readers
// see the original function, and the module stays loaded because the
// kernel never lets a module whose patch was forced while unpatching go.
func TestUnpatchForce(t *testing.T) {
	k := testenv.RequireKernel(t)
	ko := buildSleeper(t, k)
	const (
		sysfs    = "/sys/kernel/livepatch/" + sleeper
		param    = "/sys/module/" + sleeper + "/parameters/hold"
		needsYes = "--on-timeout force needs --yes"
	)
	var catPID string
	checks := []check{
		{"setup", setupStep, wantExit(0)},
		// Without --yes, --on-timeout force is refused before kelp looks
		// for the patch: no patch is loaded yet, and that is not the
		// error.
		{"usage: force needs --yes, nothing loaded", "kelp unload --timeout 3s --on-timeout force " + sleeper, func(t *testing.T, r vmtest.StepResult) {
			wantExit(64, needsYes)(t, r)
			if strings.Contains(r.Stderr, "no patch or module") {
				t.Errorf("the usage error came after a look-up:\n%s", r.Stderr)
			}
		}},
		sleeperLoad(),
		// And with the patch loaded, it is still refused with nothing
		// done: the patch stays enabled, no transition started.
		{"usage: force needs --yes, patch untouched", "kelp unload --timeout 3s --on-timeout force " + sleeper + "; rc=$?\n" +
			"cat " + sysfs + "/enabled " + sysfs + "/transition; exit $rc", func(t *testing.T, r vmtest.StepResult) {
			wantExit(64, needsYes)(t, r)
			if got := strings.TrimSpace(r.Stdout); got != "1\n0" {
				t.Errorf("enabled, transition after a usage error: %q, want \"1\\n0\"", got)
			}
			if strings.Contains(r.Stderr, "disabling") {
				t.Errorf("kelp acted before the usage error:\n%s", r.Stderr)
			}
			t.Logf("usage error: %s", r.Stderr)
		}},
		sleeperHold(&catPID),
		{"force: unload times out and forces", "kelp unload --timeout 3s --on-timeout force --yes " + sleeper, func(t *testing.T, r vmtest.StepResult) {
			t.Logf("stalled unload, forced:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
			if catPID == "" {
				t.Fatal("no reader pid")
			}
			wantExit(4, sleeper+": unpatched by force; its module can never be removed (reboot to remove it)")(t, r)
			for _, w := range []string{
				"disabling " + sleeper,
				"1 task has not switched to the unpatched state after ",
				"  pid " + catPID + " tid " + catPID + " cat, patch state patched\n",
				"] " + sleeperFn + "+0x",
				"warning: forcing the transition: forcing switches every remaining task to the target state at once, without checking its stack",
				"A module whose patch is forced while unpatching, and the patches an atomic-replace patch replaces when it is forced, can never be removed from the kernel afterwards. Reboot when convenient.",
			} {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			waitedAtLeast(t, r.Stderr, "unpatched state after ", 3)
			for _, w := range []string{"reverting", "removing module"} {
				if strings.Contains(r.Stderr, w) {
					t.Errorf("stderr has %q after a forced unload", w)
				}
			}
			if strings.Contains(r.Stdout, "unpatched and removed") {
				t.Errorf("stdout %q claims the module was removed", r.Stdout)
			}
		}},
		// The kernel completes a forced unpatch by freeing the patch: its
		// sysfs directory goes (or, at the least, it is disabled). New
		// readers run the original function, while the forced reader
		// still sleeps in the replacement, whose module stays loaded.
		{"force: patch gone, module kept", "d=" + sysfs + "\n" +
			"if [ -e $d ]; then [ \"$(cat $d/enabled $d/transition)\" = \"$(printf '0\\n0')\" ] && echo disabled; else echo gone; fi\n" +
			"grep -q '^" + sleeper + " ' /proc/modules && echo module loaded\n" +
			"grep -q sleeper /proc/cmdline || echo original cmdline\n" +
			"kill -0 $(cat /tmp/cat.pid) && echo reader sleeping", func(t *testing.T, r vmtest.StepResult) {
			got := strings.TrimSpace(r.Stdout)
			if r.Exit != 0 || (got != "gone\nmodule loaded\noriginal cmdline\nreader sleeping" && got != "disabled\nmodule loaded\noriginal cmdline\nreader sleeping") {
				t.Errorf("exit %d, stdout %q\nstderr:\n%s", r.Exit, got, r.Stderr)
			}
			t.Logf("after the forced unload:\n%s", got)
		}},
		{"force: kernel forbids removing the module", "rmmod " + sleeper + " && exit 9; grep '^" + sleeper + " ' /proc/modules", func(t *testing.T, r vmtest.StepResult) {
			if r.Exit != 0 || !strings.HasPrefix(r.Stdout, sleeper+" ") {
				t.Errorf("rmmod of a forced patch's module: exit %d stdout %q stderr %q", r.Exit, r.Stdout, r.Stderr)
			}
			t.Logf("rmmod refused: %s/proc/modules: %s", r.Stderr, r.Stdout)
		}},
		// Clearing hold lets the forced reader finish, in the replacement
		// it was running.
		{"release: reader finishes", "echo N > " + param + "\n" +
			"pid=$(cat /tmp/cat.pid); running() { [ -d /proc/$pid ] && ! grep -q '^[0-9]* (cat) Z' /proc/$pid/stat; }\n" +
			"for i in $(seq 200); do running || break; sleep 0.05; done\n" +
			"! running && cat /tmp/cat.out", stdoutIs(sleeperOut)},
		{"release: original for new readers", "grep -q sleeper /proc/cmdline || echo original", stdoutIs("original")},
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
