package livepatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/kmod"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Params are module parameters, "name=value" each.
	Params []string
	// Timeout bounds the patching transition (0: DefaultTimeout).
	Timeout time.Duration
	// OnTimeout is what happens when the timeout passes (default Revert).
	OnTimeout TimeoutAction
	// NoWait returns as soon as the transition has started, as insmod
	// does.
	NoWait bool
	// Progress receives events as the load goes; may be nil.
	Progress func(Event)
}

// Load status values.
const (
	StatusLoaded        = "loaded"         // patched, transition complete
	StatusAlready       = "already_loaded" // this patch was loaded and enabled before
	StatusStarted       = "started"        // NoWait: transition under way
	StatusForced        = "forced"         // completed by forcing after the timeout
	StatusUnloaded      = "unloaded"       // Unload: patch disabled, module removed
	StatusModuleRemoved = "module_removed" // Unload: patch was gone already, module removed
)

// LoadResult is what Load did.
type LoadResult struct {
	Patch      string   `json:"patch"`
	File       string   `json:"file"`
	Status     string   `json:"status"`
	Vermagic   string   `json:"vermagic"`
	Srcversion string   `json:"srcversion,omitempty"`
	Signed     bool     `json:"signed"`
	Params     []string `json:"params,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	// PreflightTime is the checks before loading; LoadTime the finit_module call (module load + patch init + the
	// start of the transition); TransitionTime from its return to the
	// transition's end; Elapsed the whole Load.
	PreflightTime  Duration `json:"preflight_seconds"`
	LoadTime       Duration `json:"load_seconds"`
	TransitionTime Duration `json:"transition_seconds"`
	// KernelTime is the kernel's own view, from its log: "enabling patch"
	// to "patching complete" (0 when the log was not readable).
	KernelTime Duration `json:"kernel_seconds,omitempty"`
	Elapsed    Duration `json:"elapsed_seconds"`
	// Tasks is the number of tasks the transition switched.
	Tasks int `json:"tasks,omitempty"`
	// Blockers are the tasks that held the transition up at the timeout
	// (when it was then waited for or forced).
	Blockers  []Task   `json:"blockers,omitempty"`
	KernelLog []string `json:"kernel_log,omitempty"`
}

// Load applies the livepatch module at path to the running kernel: it
// checks the file and the system first (refusing with a *PreflightError
// and changing nothing), loads the module with finit_module (a
// *KernelError when the kernel refuses it), then watches the patching
// transition until every task runs the new code. When the transition
// outlives opts.Timeout, opts.OnTimeout decides: Revert reverses it and
// removes the module (a *TimeoutError with Reverted set: the system is as
// it was), Wait keeps waiting, Force completes it. A canceled ctx is
// treated as a timeout with Revert.
func (s System) Load(ctx context.Context, path string, opts LoadOptions) (*LoadResult, error) {
	start := time.Now()
	rep := reporter(opts.Progress)
	m, warnings, err := s.Inspect(path, opts.Params)
	if err != nil {
		return nil, err
	}
	res := &LoadResult{
		Patch: m.Name, File: path, Vermagic: strings.TrimSpace(m.Vermagic), Srcversion: m.Srcversion,
		Signed: m.Signature != nil, Params: opts.Params, Warnings: warnings,
	}
	unlock := s.lock()
	ready, err := s.preflightSystem(m)
	if err != nil {
		unlock()
		return nil, err
	}
	if ready.alreadyEnabled {
		unlock()
		res.Status = StatusAlready
		res.Elapsed = Duration(time.Since(start))
		return res, nil
	}
	res.PreflightTime = Duration(time.Since(start))
	// Warnings only once every check passed: a refusal is one line.
	for _, w := range warnings {
		rep.warn(m.Name, w)
	}
	klog := s.followKernelLog(func(l string) { rep.send(Event{Kind: EventKernelLog, Patch: m.Name, Message: l}) }, m.Name)
	rep.step(m.Name, fmt.Sprintf("loading %s (patch %s)", path, m.Name))
	loadStart := time.Now()
	err = s.finit(path, strings.Join(opts.Params, " "))
	res.LoadTime = Duration(time.Since(loadStart))
	unlock()
	if err != nil {
		lines := klog.Stop()
		return nil, &KernelError{Patch: m.Name, Op: "load the module", Err: err, Log: lines, Hint: hintLine(lines), Advice: loadAdvice(err, m)}
	}
	// A module marked livepatch=Y whose init registered no patch: take it
	// out again, so the system ends as it was.
	if _, err := s.Patch(m.Name); errors.Is(err, ErrNotLoaded) {
		lines := klog.Stop()
		kerr := &KernelError{Patch: m.Name, Op: "register the patch", Err: errNoPatch, Log: lines, Hint: hintLine(lines), Advice: "the module was removed again"}
		if rmErr := sys.DeleteModule(m.Name, true); rmErr != nil {
			return nil, &IncompleteError{Patch: m.Name, Reason: "the module loaded but registered no livepatch, and removing it failed: " + errnoText(rmErr), Err: kerr}
		}
		return nil, kerr
	}
	if opts.NoWait {
		res.Status = StatusStarted
		res.KernelLog = klog.Stop()
		res.Elapsed = Duration(time.Since(start))
		return res, nil
	}

	return res, s.settleLoad(ctx, res, opts, klog, start, loadStart)
}

// settleLoad watches a loaded patch's transition to its end, applying
// opts.OnTimeout when it outlives opts.Timeout, and fills res.
func (s System) settleLoad(ctx context.Context, res *LoadResult, opts LoadOptions, klog *kmsgFollower, start, loadStart time.Time) error {
	rep, name := reporter(opts.Progress), res.Patch
	w := s.watch(ctx, name, Patched, orDefault(opts.Timeout), rep)
	for w.outcome == timedOut && opts.OnTimeout == Wait {
		res.Blockers = w.pending
		rep.send(Event{Kind: EventBlockers, Patch: name, Target: Patched, Blockers: w.pending, Elapsed: time.Since(loadStart)})
		rep.warn(name, "still waiting for the transition (--on-timeout wait)")
		w = s.watch(ctx, name, Patched, orDefault(opts.Timeout), rep)
	}
	res.Tasks = w.total
	switch w.outcome {
	case reached:
		res.Status = StatusLoaded
	case reversed, vanished:
		res.KernelLog = klog.Stop()
		return &IncompleteError{Patch: name, Reason: "the patching transition was reversed or the patch removed by someone else while kelp watched it"}
	case timedOut, canceled:
		after := time.Since(loadStart)
		res.Blockers = w.pending
		rep.send(Event{Kind: EventBlockers, Patch: name, Target: Patched, Blockers: w.pending, Elapsed: after})
		if w.outcome == timedOut && opts.OnTimeout == Force {
			if err := s.force(ctx, name, Patched, rep); err != nil {
				res.KernelLog = klog.Stop()
				return err
			}
			res.Status = StatusForced
			res.Warnings = append(res.Warnings, "transition forced: "+ForceWarning)
			break
		}
		terr := s.revertLoad(name, orDefault(opts.Timeout), rep)
		terr.After, terr.Blockers = after, w.pending
		res.KernelLog = klog.Stop()
		res.Elapsed = Duration(time.Since(start))
		return terr
	}
	res.TransitionTime = Duration(time.Since(loadStart) - time.Duration(res.LoadTime))
	res.Elapsed = Duration(time.Since(start))
	res.KernelLog = klog.StopAfter("'" + name + "': patching complete")
	if d, ok := klog.span("enabling patch '"+name+"'", "'"+name+"': patching complete"); ok {
		res.KernelTime = Duration(d)
	}
	return nil
}

// errNoPatch: a module that says livepatch=Y but registered no patch.
var errNoPatch = errors.New("the module loaded, but its init registered no livepatch (no klp_enable_patch)")

// loadAdvice says what to do about a refused load where the errno alone
// does not.
func loadAdvice(err error, m *kmod.Module) string {
	switch {
	case errors.Is(err, sys.EKEYREJECTED), errors.Is(err, sys.ENOKEY), errors.Is(err, sys.EKEYEXPIRED), errors.Is(err, sys.EBADMSG):
		signer := ""
		if m.Signature != nil && m.Signature.Signer != "" {
			signer = " (signer " + m.Signature.Signer + ")"
		}
		return "the kernel does not trust the module's signature" + signer + ": sign it with a key in the kernel's trusted keyrings"
	case errors.Is(err, sys.EPERM):
		return "module loading is not permitted (root with CAP_SYS_MODULE needed, or kernel.modules_disabled / lockdown)"
	case errors.Is(err, sys.EBUSY):
		return "another patch may be in transition, or a function is already redirected by ftrace (kprobe?); see kelp list"
	}
	return ""
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// finit loads the module file with finit_module.
func (s System) finit(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return sys.FinitModule(f, params, 0)
}

// revertLoad reverses a stalled patching transition, waits for the
// reversal and removes the module, so the system ends as it was.
func (s System) revertLoad(name string, timeout time.Duration, rep reporter) *TimeoutError {
	terr := &TimeoutError{Patch: name, Target: Patched}
	// Independent of the caller's context: an interrupted kelp must still
	// leave the system as it found it.
	ctx := context.Background()
	rep.step(name, "reverting: reversing the patching transition of "+name)
	if err := s.setEnabled(name, false); err != nil {
		// The transition may have completed in the meantime; then
		// writing 0 is an ordinary disable, which also reverts.
		terr.Stuck = "the reversal failed: " + errnoText(err) + "; see kelp list"
		return terr
	}
	w := s.watch(ctx, name, Unpatched, timeout, rep)
	switch w.outcome {
	case reached:
	case timedOut:
		rep.send(Event{Kind: EventBlockers, Patch: name, Target: Unpatched, Blockers: w.pending, Elapsed: w.elapsed})
		terr.Stuck = fmt.Sprintf("the reversal stalled as well (%s); patch %s is still unpatching: see kelp list, kelp force %s", blockerSummary(w.pending), name, name)
		return terr
	default:
		terr.Stuck = "the reversal was interfered with; see kelp list"
		return terr
	}
	if err := s.removeModule(ctx, name, rep); err != nil {
		terr.Stuck = "reversed, but " + err.Error()
		return terr
	}
	terr.Reverted = true
	return terr
}

// force completes patch name's transition towards target with the force
// attribute and waits for the kernel to finish it (it does so at its next
// retry, within about a second).
func (s System) force(ctx context.Context, name string, target State, rep reporter) error {
	rep.warn(name, "forcing the transition: "+ForceWarning)
	if err := s.writePatchAttr(name, "force", "1"); err != nil {
		return &KernelError{Patch: name, Op: "force the transition", Err: err}
	}
	w := s.watch(context.Background(), name, target, 30*time.Second, rep)
	if w.outcome != reached {
		return &IncompleteError{Patch: name, Reason: "forced, but the transition has not completed after 30s; see kelp list"}
	}
	return nil
}
