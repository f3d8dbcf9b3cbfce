package livepatch

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
)

// The errors below are what Load, Unload and Force return, one type per
// outcome a caller (the CLI, the boot loader) must tell apart. Each
// Error() is one line naming what and why.

// PreflightError is a refusal before anything was changed: bad input, a
// module built for another kernel, a system that cannot live patch, another
// patch in transition, ... The system is exactly as it was.
type PreflightError struct {
	// Target is the file or patch the refusal is about.
	Target string
	// Check names the failed check (e.g. "vermagic", "transition").
	Check  string
	Reason string
	Err    error
}

func (e *PreflightError) Error() string { return e.Target + ": " + e.Reason }
func (e *PreflightError) Unwrap() error { return e.Err }

// KernelError is the kernel refusing an operation: finit_module failed
// (the module is not loaded), or a sysfs write was rejected. Log holds the
// kernel log lines printed meanwhile that concern the patch. Nothing was
// left behind by kelp; the kernel undoes a failed module load itself.
type KernelError struct {
	Patch string
	Op    string // "load", "disable", "enable", "force", "remove module"
	Err   error  // the errno, wrapped
	// Log are the kernel log lines about the patch printed during the
	// operation; Hint is the one that best explains the failure.
	Log  []string
	Hint string
	// Advice, when set, says what to do about it.
	Advice string
}

func (e *KernelError) Error() string {
	msg := fmt.Sprintf("%s: kernel refused to %s: %s", e.Patch, e.Op, errnoText(e.Err))
	if e.Hint != "" {
		msg += " (kernel log: " + e.Hint + ")"
	}
	if e.Advice != "" {
		msg += "; " + e.Advice
	}
	return msg
}

func (e *KernelError) Unwrap() error { return e.Err }

// TimeoutError is a transition that did not finish within the timeout.
// Reverted tells whether the system is back where it started (the patch
// reversed, and for a load its module removed); otherwise Stuck describes
// what is left (e.g. the reversal itself stalled).
type TimeoutError struct {
	Patch  string
	Target State // the state the timed-out transition aimed at
	After  time.Duration
	// Blockers are the tasks that had not switched when the timeout hit.
	Blockers []Task
	Reverted bool
	// Stuck, when the system is not back where it started, says how.
	Stuck string
}

func (e *TimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s transition timed out after %s", e.Patch, e.Target.Verb(), fmtDuration(e.After))
	if n := len(e.Blockers); n > 0 {
		fmt.Fprintf(&b, " (%s)", blockerSummary(e.Blockers))
	}
	switch {
	case e.Reverted && e.Target == Patched:
		b.WriteString("; reverted, the patch is not applied")
	case e.Reverted:
		b.WriteString("; reverted, the patch stays applied")
	case e.Stuck != "":
		b.WriteString("; " + e.Stuck)
	}
	return b.String()
}

// ErrNotLoaded reports a patch or module name that is not loaded.
var ErrNotLoaded = errors.New("not loaded")

// IncompleteError is an operation that got part of the way: the patch is in
// a defined state, but not the one asked for (e.g. disabled but its module
// cannot be removed because its transition was forced).
type IncompleteError struct {
	Patch  string
	Reason string
	Err    error
}

func (e *IncompleteError) Error() string { return e.Patch + ": " + e.Reason }
func (e *IncompleteError) Unwrap() error { return e.Err }

func blockerSummary(ts []Task) string {
	var names []string
	for i, t := range ts {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(ts)-3))
			break
		}
		s := fmt.Sprintf("%s pid %d", t.Comm, t.TID)
		if fn := t.BlockingFrame(); fn != "" {
			s += " in " + fn
		}
		names = append(names, s)
	}
	word := "tasks"
	if len(ts) == 1 {
		word = "task"
	}
	return fmt.Sprintf("%d blocking %s: %s", len(ts), word, strings.Join(names, ", "))
}

// errnoText renders an error ending in an errno as "no such device
// (ENODEV)"; other errors as their text.
func errnoText(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		if name := sys.ErrnoName(en); name != "" {
			return en.Error() + " (" + name + ")"
		}
		return en.Error()
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

func isEPIPE(err error) bool { return errors.Is(err, sys.EPIPE) }
