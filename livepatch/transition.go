package livepatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
)

// PollInterval is how often kelp looks at a transition. The kernel retries
// stuck tasks about once a second, but most tasks switch on their way back
// to user space or in the idle loop at any moment: polling at 1 s (as
// kpatch does) would add up to a second to every load.
const PollInterval = 20 * time.Millisecond

// DefaultTimeout bounds a transition when the caller gives no timeout. The
// kernel sends fake signals to stuck tasks every ~15 s, so a minute leaves
// room for four rounds.
const DefaultTimeout = 60 * time.Second

// TimeoutAction is what happens when a transition outlives its timeout.
type TimeoutAction int

const (
	// Revert reverses the transition and waits for the reversal (default).
	Revert TimeoutAction = iota
	// Wait keeps waiting, reporting the blockers again each timeout period.
	Wait
	// Force completes the transition at once, breaking the consistency
	// guarantee (see ForceWarning).
	Force
)

func (a TimeoutAction) String() string {
	switch a {
	case Wait:
		return "wait"
	case Force:
		return "force"
	}
	return "revert"
}

// ParseTimeoutAction reads "revert", "wait" or "force".
func ParseTimeoutAction(s string) (TimeoutAction, error) {
	switch s {
	case "revert", "":
		return Revert, nil
	case "wait":
		return Wait, nil
	case "force":
		return Force, nil
	}
	return Revert, fmt.Errorf("unknown timeout action %q (want revert, wait or force)", s)
}

// ForceWarning explains what forcing a transition means, for the admin to
// read before it happens.
const ForceWarning = "forcing switches every remaining task to the target state at once, " +
	"without checking its stack: a task that was blocked may still be running the code being replaced, " +
	"which the consistency model exists to prevent. " +
	"A module whose patch is forced while unpatching, and the patches an atomic-replace patch replaces " +
	"when it is forced, can never be removed from the kernel afterwards. Reboot when convenient."

// outcome is how watching a transition ended.
type outcome int

const (
	reached  outcome = iota // the transition reached the target
	timedOut                // the timeout passed first
	canceled                // the context ended first
	reversed                // someone else reversed the transition
	vanished                // the patch disappeared while patching
)

// watchResult is what watch saw.
type watchResult struct {
	outcome outcome
	elapsed time.Duration
	total   int
	// pending are the tasks not yet switched at the end (timedOut,
	// canceled), with comm and stack.
	pending []Task
}

// watch follows patch name's transition towards target until it is over,
// timeout passes (0: never) or ctx ends. It polls the patch's sysfs files
// every PollInterval and reports progress from the tasks' patch_state.
func (s System) watch(ctx context.Context, name string, target State, timeout time.Duration, rep reporter) watchResult {
	start := time.Now()
	var lastSwitched, lastTotal = -1, -1
	var lastReport time.Time
	var nextScan time.Time
	var total int
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	finish := func(o outcome) watchResult {
		r := watchResult{outcome: o, elapsed: time.Since(start), total: total}
		if o == reached && total > 0 {
			rep.send(Event{Kind: EventProgress, Patch: name, Target: target, Switched: total, Total: total, Elapsed: r.elapsed})
		}
		if o == timedOut || o == canceled {
			sc := s.scanTasks(target)
			r.pending = s.describeTasks(sc.Pending)
		}
		return r
	}
	for {
		p, err := s.Patch(name)
		switch {
		case errors.Is(err, ErrNotLoaded):
			if target == Unpatched {
				return finish(reached)
			}
			return finish(vanished)
		case err == nil && !p.Transition:
			if p.Target() == target {
				return finish(reached)
			}
			return finish(reversed)
		case err == nil && p.Target() != target:
			return finish(reversed)
		}
		now := time.Now()
		if !now.Before(nextScan) {
			// A scan reads three files per task; on a machine with
			// thousands of threads keep it to a small share of the time.
			sc := s.scanTasks(target)
			cost := time.Since(now)
			nextScan = time.Now().Add(max(PollInterval, 10*cost))
			if sc.Total > 0 && sc.Undefined < sc.Total {
				total = sc.Total
				if sc.Switched != lastSwitched || sc.Total != lastTotal || now.Sub(lastReport) >= time.Second {
					rep.send(Event{Kind: EventProgress, Patch: name, Target: target, Switched: sc.Switched, Total: sc.Total, Elapsed: now.Sub(start)})
					lastSwitched, lastTotal, lastReport = sc.Switched, sc.Total, now
				}
			}
		}
		if timeout > 0 && time.Since(start) >= timeout {
			return finish(timedOut)
		}
		select {
		case <-ctx.Done():
			return finish(canceled)
		case <-tick.C:
		}
	}
}

// writeSysfs writes a value to a patch attribute; the error names the
// attribute and keeps the errno.
func (s System) writePatchAttr(name, attr, value string) error {
	path := s.livepatchDir(name, attr)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s to %s: %w", value, path, err)
	}
	return nil
}

// setEnabled writes enabled; while the patch is in transition this
// reverses it.
func (s System) setEnabled(name string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return s.writePatchAttr(name, "enabled", v)
}

// removeModule waits until the livepatch core has let go of the patch
// module (its sysfs entry freed, refcount 0) and unloads it.
func (s System) removeModule(ctx context.Context, name string, rep reporter) error {
	const grace = 10 * time.Second
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	wait := func(cond func() bool) bool {
		for !cond() {
			if time.Now().After(deadline) {
				return false
			}
			select {
			case <-ctx.Done():
				return false
			case <-tick.C:
			}
		}
		return true
	}
	// The core frees a disabled patch from a work item after the
	// transition: its sysfs entry goes, then its module reference.
	if !wait(func() bool { _, err := s.Patch(name); return errors.Is(err, ErrNotLoaded) }) {
		return &IncompleteError{Patch: name, Reason: "disabled, but the kernel has not released the patch after " + grace.String() + "; its module stays loaded (retry kelp unload " + name + ")"}
	}
	var refs int
	gone := false
	ok := wait(func() bool {
		m, err := s.module(name)
		if err != nil || m == nil {
			gone = true
			return true
		}
		refs = m.Refcount
		return m.Refcount == 0
	})
	if gone {
		return nil
	}
	if !ok {
		return &IncompleteError{Patch: name, Reason: fmt.Sprintf("disabled, but its module is still in use (refcount %d): "+
			"a patch forced while unpatching, or replaced by a forced patch, can never be removed; reboot to remove it", refs)}
	}
	rep.step(name, "removing module "+name)
	err := sys.DeleteModule(name, true)
	if err != nil && !errors.Is(err, sys.ENOENT) {
		return &KernelError{Patch: name, Op: "remove module", Err: err}
	}
	return nil
}
