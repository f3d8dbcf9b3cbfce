package vmtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
)

// wrappedQEMU writes a QEMU wrapper whose first `stalls` runs do first
// (shell, with the arguments in "$@") before running QEMU; later runs are
// QEMU's.
func wrappedQEMU(t *testing.T, stalls int, first string) string {
	t.Helper()
	real, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: "qemu-system-x86_64", Package: "qemu-system-x86"})
	}
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
n=$(cat %[1]s/count 2>/dev/null || echo 0)
n=$((n+1))
echo $n > %[1]s/count
if [ "$n" -le %[2]d ]; then
%[4]s
fi
exec %[3]s "$@"
`, dir, stalls, real, first)
	path := filepath.Join(dir, "qemu")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// stallingQEMU writes a QEMU wrapper whose first `stalls` guests stall in
// early boot: their kernel is told to start a missing init, so it falls
// back to waiting for a root device that never comes, printing nothing
// more, before any userspace runs. Later guests boot normally.
func stallingQEMU(t *testing.T, stalls int) string {
	return wrappedQEMU(t, stalls, `	for a in "$@"; do
		shift
		case "$a" in *rdinit=/init*) a=$(echo "$a" | sed 's#rdinit=/init#rdinit=/nonexistent root=/dev/vdz rootwait#');; esac
		set -- "$@" "$a"
	done`)
}

// busyQEMU writes a QEMU wrapper whose first `stalls` runs are an early
// boot that keeps printing line to the console every half second and never
// starts an init; later runs are QEMU's.
func busyQEMU(t *testing.T, stalls int, line string) string {
	return wrappedQEMU(t, stalls, fmt.Sprintf(`	i=0
	while :; do
		i=$((i+1))
		printf '[ %%6d.000000] %%s\n' "$i" %q >&3
		sleep 0.5
	done`, line))
}

// logLines collects Config.Log output.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

// TestStalledBootRetried: a guest whose console goes silent before its
// userspace starts is killed and booted again, and the retry is logged
// with its reason; the test steps then run once.
func TestStalledBootRetried(t *testing.T) {
	k := testenv.RequireKernel(t)
	var log logLines
	res, err := Run(context.Background(), Config{
		Kernel:       k,
		StallTimeout: 15 * time.Second,
		Steps:        []Step{{Name: "hello", Shell: "echo hello"}},
		Log:          log.logf,
		qemu:         stallingQEMU(t, 1),
	})
	if err != nil {
		t.Fatalf("boot after one stalled attempt: %v\n%s", err, res.Console)
	}
	if got := res.MustStep(t, "hello").Stdout; got != "hello\n" {
		t.Errorf("step output %q", got)
	}
	retries := log.matching("stalled before its init started")
	if len(retries) != 1 || !strings.Contains(retries[0], "attempt 2 of 3") || !strings.Contains(retries[0], "no console output for 15s") {
		t.Errorf("want one logged retry naming the silence, got %q", retries)
	}
}

// TestBusyStallRetried: a guest whose kernel keeps printing but never
// starts init is a stall too: when the kernel reports itself stuck (a hung
// task while the guest is still in early boot) and when init has not
// started within EarlyBootLimit.
func TestBusyStallRetried(t *testing.T) {
	k := testenv.RequireKernel(t)
	// The limit holds for the real boot that follows the stuck one too:
	// it must leave a loaded machine's boot time to reach init.
	const noInit = 90 * time.Second
	for _, tc := range []struct {
		name, line, reason string
		limit              time.Duration
	}{
		{"hung task", "INFO: task swapper/0:1 blocked for more than 120 seconds.", `the kernel reported itself stuck: "[      1.000000] INFO: task swapper/0:1 blocked for more than 120 seconds."`, 0},
		{"no init", "ata1: link is slow to respond", `init not started after 1m30s; last console line "[`, noInit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logLines
			res, err := Run(context.Background(), Config{
				Kernel:         k,
				EarlyBootLimit: tc.limit,
				Steps:          []Step{{Name: "hello", Shell: "echo hello"}},
				Log:            log.logf,
				qemu:           busyQEMU(t, 1, tc.line),
			})
			if err != nil {
				t.Fatalf("boot after one stuck attempt: %v\n%s", err, res.Console)
			}
			if got := res.MustStep(t, "hello").Stdout; got != "hello\n" {
				t.Errorf("step output %q", got)
			}
			retries := log.matching("stalled before its init started")
			if len(retries) != 1 || !strings.Contains(retries[0], tc.reason) || !strings.Contains(retries[0], "attempt 2 of 3") {
				t.Errorf("want one logged retry with %q, got %q", tc.reason, retries)
			}
		})
	}
}

// TestEarlyBootStuck: the kernel's own stuck reports are recognised in a
// console, and a normal early boot console is not taken for one.
func TestEarlyBootStuck(t *testing.T) {
	normal := "[    0.000000] Linux version 6.1.0-57-cloud-amd64\n" +
		"[    0.026039] Spectre V2 : Mitigation: Retpolines\n" +
		"[    1.204000] clocksource: Switched to clocksource hpet\n" +
		"[    2.100000] Freeing unused kernel image (initmem) memory: 2612K\n"
	if got := earlyBootStuck(normal); got != "" {
		t.Errorf("normal boot taken for stuck: %s", got)
	}
	for _, line := range []string{
		"[  245.812033] INFO: task swapper/0:1 blocked for more than 120 seconds.",
		"[   52.000231] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [swapper/0:1]",
		"[   63.112000] rcu: INFO: rcu_preempt self-detected stall on CPU",
		"[   63.112000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
	} {
		got := earlyBootStuck(normal + line + "\n[  245.900000] Call Trace:\n")
		if want := fmt.Sprintf("the kernel reported itself stuck: %q", line); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestStalledBootGivesUp: a guest that stalls on every attempt ends in one
// line saying so, after BootAttempts attempts and no later than their
// stall limits allow.
func TestStalledBootGivesUp(t *testing.T) {
	k := testenv.RequireKernel(t)
	var log logLines
	stall := 10 * time.Second
	res, err := Run(context.Background(), Config{
		Kernel:       k,
		StallTimeout: stall,
		Timeout:      time.Minute,
		Log:          log.logf,
		qemu:         stallingQEMU(t, BootAttempts),
	})
	var be *BootError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), fmt.Sprintf("guest stalled before its init started in %d attempts", BootAttempts)) {
		t.Fatalf("want a stall error after %d attempts, got %v", BootAttempts, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("stall error is not one line: %q", err)
	}
	if n := len(log.matching("booting again")); n != BootAttempts-1 {
		t.Errorf("logged %d retries, want %d", n, BootAttempts-1)
	}
	if !strings.Contains(err.Error(), "Waiting for root device") {
		t.Errorf("stall error does not name the last console line: %v", err)
	}
	if limit := time.Duration(BootAttempts) * (stall + 45*time.Second); res.Elapsed > limit {
		t.Errorf("stalled boots took %s, want at most %s", res.Elapsed, limit)
	}
}

// TestQuietStepNotAStall: once the guest's userspace runs, a silent
// console is the test's business (Timeout), never a stall to retry.
func TestQuietStepNotAStall(t *testing.T) {
	k := testenv.RequireKernel(t)
	var log logLines
	res := RunT(t, Config{
		Kernel:       k,
		StallTimeout: 15 * time.Second,
		Steps:        []Step{{Name: "quiet", Shell: "sleep 20; echo done"}},
		Log:          log.logf,
	})
	if got := res.MustStep(t, "quiet").Stdout; got != "done\n" {
		t.Errorf("quiet step output %q", got)
	}
	if got := log.matching("stalled"); len(got) != 0 {
		t.Errorf("a quiet step was taken for a stall: %q", got)
	}
}

// TestSlots: a guest slot is held until released, across open files like
// across processes; KELP_VM_SLOTS is validated.
func TestSlots(t *testing.T) {
	old := slotDir
	slotDir = t.TempDir()
	t.Cleanup(func() { slotDir = old })
	t.Setenv("KELP_VM_SLOTS", "1")
	ctx := context.Background()
	release, err := acquireSlot(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log logLines
	got := make(chan error, 1)
	var second func()
	go func() {
		var err error
		second, err = acquireSlot(ctx, log.logf)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second guest got a slot while the only one was held (err %v)", err)
	case <-time.After(time.Second):
	}
	if len(log.matching("waiting for a guest slot (1 in use")) != 1 {
		t.Errorf("the wait was not logged: %q", log.lines)
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
		second()
	case <-time.After(5 * time.Second):
		t.Fatal("second guest did not get the released slot")
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	hold, err := acquireSlot(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold()
	if _, err := acquireSlot(cctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("canceled wait for a slot: %v", err)
	}
	for _, bad := range []string{"0", "-2", "many"} {
		t.Setenv("KELP_VM_SLOTS", bad)
		if _, err := Slots(); err == nil || !strings.Contains(err.Error(), "KELP_VM_SLOTS") {
			t.Errorf("KELP_VM_SLOTS=%s: got %v", bad, err)
		}
	}
}

var stressRounds = flag.Int("vmstress.rounds", 1, "rounds of TestConcurrentBoots (each: 2 initramfs guests and 1 system guest at once)")

// TestConcurrentBoots starts initramfs and full-system guests all at once,
// as parallel test packages do, and every one must boot and run its step.
// `go test ./internal/vmtest -run ConcurrentBoots -vmstress.rounds=N` (with
// KELP_VM_SLOTS raised to let them really overlap) is the stress run.
func TestConcurrentBoots(t *testing.T) {
	k := testenv.RequireKernel(t)
	img := SystemT(t, k)
	type outcome struct {
		kind string
		err  error
	}
	var wg sync.WaitGroup
	results := make(chan outcome, 3**stressRounds)
	var log logLines
	for r := range *stressRounds {
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := Config{Kernel: k, Timeout: 5 * time.Minute, Log: log.logf,
					Steps: []Step{{Name: "id", Shell: fmt.Sprintf("echo guest-%d-%d", r, i)}}}
				kind := "initramfs"
				if i == 2 {
					kind = "system"
					disk, err := NewSystemDisk(t.TempDir(), img)
					if err != nil {
						results <- outcome{kind, err}
						return
					}
					cfg.System = disk
				}
				res, err := Run(context.Background(), cfg)
				if err == nil {
					if s, ok := res.Step("id"); !ok || s.Stdout != fmt.Sprintf("guest-%d-%d\n", r, i) {
						err = fmt.Errorf("step id: %+v", s)
					}
				}
				if err != nil && res.Console != "" {
					t.Logf("%s guest %d-%d console:\n%s", kind, r, i, res.Console)
				}
				results <- outcome{kind, err}
			}()
		}
	}
	wg.Wait()
	close(results)
	boots, failed := map[string]int{}, 0
	for o := range results {
		boots[o.kind]++
		if o.err != nil {
			failed++
			t.Errorf("%s guest: %v", o.kind, o.err)
		}
	}
	t.Logf("%d initramfs and %d system guests started at once over %d round(s): %d failed, %d stalled boots retried",
		boots["initramfs"], boots["system"], *stressRounds, failed, len(log.matching("booting again")))
	if boots["initramfs"] != 2**stressRounds || boots["system"] != *stressRounds {
		t.Errorf("guests run: %v", boots)
	}
}

// TestNoGuestOutlivesItsTest: when the process that booted a guest dies
// (a test binary killed at its -timeout), QEMU dies with it.
func TestNoGuestOutlivesItsTest(t *testing.T) {
	if os.Getenv("KELP_VMTEST_ORPHAN") != "" {
		// The child: boot a "QEMU" that writes its pid and waits.
		_, err := Run(context.Background(), Config{Timeout: time.Hour, qemu: os.Getenv("KELP_VMTEST_ORPHAN")})
		t.Fatalf("the boot returned (%v); it should have been killed with this process", err)
	}
	testenv.RequireKernel(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "qemu")
	pidFile := filepath.Join(dir, "pid")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho $$ > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+"\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestNoGuestOutlivesItsTest$")
	child.Env = append(os.Environ(), "KELP_VMTEST_ORPHAN="+fake, "KELP_VM_SLOTS=64")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid string
	for i := 0; i < 600 && pid == ""; i++ {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid = strings.TrimSpace(string(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pid == "" {
		child.Process.Kill()
		t.Fatal("the child never started its guest")
	}
	child.Process.Kill()
	child.Wait()
	for i := 0; i < 50; i++ {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			return
		}
		if b, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(b), ") Z ") {
			return // dead, waiting to be reaped by init
		}
		time.Sleep(100 * time.Millisecond)
	}
	exec.Command("kill", "-9", pid).Run()
	t.Fatalf("guest process %s outlived the process that started it", pid)
}
