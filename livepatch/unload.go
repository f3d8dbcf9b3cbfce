package livepatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelp-project/kelp/kmod"
)

// UnloadOptions tune Unload.
type UnloadOptions struct {
	// Timeout bounds the unpatching transition (0: DefaultTimeout).
	Timeout time.Duration
	// OnTimeout: Revert (default) re-enables the patch, which reverses
	// the transition back to patched; Wait keeps waiting; Force forces it.
	OnTimeout TimeoutAction
	Progress  func(Event)
}

// UnloadResult is what Unload did.
type UnloadResult struct {
	Patch          string   `json:"patch"`
	Status         string   `json:"status"`
	Tasks          int      `json:"tasks,omitempty"`
	TransitionTime Duration `json:"transition_seconds"`
	Elapsed        Duration `json:"elapsed_seconds"`
	Blockers       []Task   `json:"blockers,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
	KernelLog      []string `json:"kernel_log,omitempty"`
}

// PatchName turns what a user typed (a patch name, a module name with '-',
// a .ko file name) into the name the kernel registers.
func PatchName(arg string) string {
	if strings.HasSuffix(arg, ".ko") || strings.Contains(arg, "/") {
		return kmod.NameFromFile(filepath.Base(arg))
	}
	return strings.ReplaceAll(arg, "-", "_")
}

// Unload disables patch name, watches the unpatching transition, waits for
// the livepatch core to release the module and removes it. A patch still
// patching is reversed. A livepatch module whose patch is already gone
// (disabled, or replaced by an atomic-replace patch) is just removed. On
// timeout, opts.OnTimeout decides as for Load; Revert leaves the patch
// applied and returns a *TimeoutError with Reverted set.
func (s System) Unload(ctx context.Context, name string, opts UnloadOptions) (*UnloadResult, error) {
	start := time.Now()
	name = PatchName(name)
	rep := reporter(opts.Progress)
	res := &UnloadResult{Patch: name}
	refuse := func(check, format string, args ...any) (*UnloadResult, error) {
		return nil, &PreflightError{Target: name, Check: check, Reason: fmt.Sprintf(format, args...)}
	}

	done, busy := s.unloading(name)
	if busy {
		return refuse("unloading", "another kelp is unloading %s right now; wait for it (kelp list)", name)
	}
	defer done()
	unlock := s.lock()
	p, perr := s.Patch(name)
	if perr != nil && !errors.Is(perr, ErrNotLoaded) {
		unlock()
		return refuse("sysfs", "cannot read the patch state: %v", perr)
	}
	mod, err := s.module(name)
	if err != nil {
		unlock()
		return refuse("modules", "cannot list loaded modules: %v", err)
	}
	if p == nil {
		unlock()
		switch {
		case mod == nil:
			return nil, &PreflightError{Target: name, Check: "loaded", Reason: "no patch or module of that name is loaded (see kelp list)", Err: ErrNotLoaded}
		case !mod.Livepatch():
			return refuse("livepatch", "module %s is not a livepatch module; kelp unloads patches only (use modprobe -r)", name)
		}
		if err := s.removeModule(ctx, name, rep); err != nil {
			return nil, err
		}
		res.Status = StatusModuleRemoved
		res.Elapsed = Duration(time.Since(start))
		return res, nil
	}
	if t, err := s.transitioning(); err == nil && t != nil && t.Name != name {
		unlock()
		return refuse("transition", "patch %s is in transition (%s); the kernel runs one transition at a time: wait for it, or end it with kelp unload %s (reverse) or kelp force %s", t.Name, s.transitionText(*t), t.Name, t.Name)
	}

	klog := s.followKernelLog(func(l string) { rep.send(Event{Kind: EventKernelLog, Patch: name, Message: l}) }, name)
	defer func() { res.KernelLog = klog.StopAfter("'" + name + "': unpatching complete") }()
	switch {
	case p.Enabled && p.Transition:
		rep.step(name, "reversing the patching transition of "+name)
	case p.Enabled:
		rep.step(name, "disabling "+name)
	}
	if p.Enabled {
		err := s.setEnabled(name, false)
		if err != nil {
			unlock()
			return nil, &KernelError{Patch: name, Op: "disable the patch", Err: err}
		}
	}
	unlock()

	return res, s.settleUnload(ctx, res, opts, start)
}

// settleUnload watches a disabled patch's unpatching transition to its
// end, applying opts.OnTimeout, and removes the module.
func (s System) settleUnload(ctx context.Context, res *UnloadResult, opts UnloadOptions, start time.Time) error {
	rep, name := reporter(opts.Progress), res.Patch
	tstart := time.Now()
	timeout := orDefault(opts.Timeout)
	w := s.watch(ctx, name, Unpatched, timeout, rep)
	for w.outcome == timedOut && opts.OnTimeout == Wait {
		res.Blockers = w.pending
		rep.send(Event{Kind: EventBlockers, Patch: name, Target: Unpatched, Blockers: w.pending, Elapsed: time.Since(tstart)})
		rep.warn(name, "still waiting for the transition (--on-timeout wait)")
		w = s.watch(ctx, name, Unpatched, timeout, rep)
	}
	res.Tasks = w.total
	switch w.outcome {
	case reached:
	case reversed:
		return &IncompleteError{Patch: name, Reason: "the unpatching transition was reversed by someone else; the patch stays applied"}
	case timedOut, canceled:
		after := time.Since(tstart)
		res.Blockers = w.pending
		rep.send(Event{Kind: EventBlockers, Patch: name, Target: Unpatched, Blockers: w.pending, Elapsed: after})
		if w.outcome == timedOut && opts.OnTimeout == Force {
			if err := s.force(ctx, name, Unpatched, rep); err != nil {
				return err
			}
			res.Warnings = append(res.Warnings, "transition forced: "+ForceWarning)
			// A patch forced while unpatching keeps its module.
			return &IncompleteError{Patch: name, Reason: "unpatched by force; its module can never be removed (reboot to remove it)"}
		}
		terr := s.revertUnload(name, timeout, rep)
		terr.After, terr.Blockers = after, w.pending
		return terr
	}
	res.TransitionTime = Duration(time.Since(tstart))
	if err := s.removeModule(ctx, name, rep); err != nil {
		return err
	}
	res.Status = StatusUnloaded
	res.Elapsed = Duration(time.Since(start))
	return nil
}

// revertUnload re-enables a patch whose unpatching stalled, which reverses
// the transition back to patched, and waits for that.
func (s System) revertUnload(name string, timeout time.Duration, rep reporter) *TimeoutError {
	terr := &TimeoutError{Patch: name, Target: Unpatched}
	rep.step(name, "reverting: reversing the unpatching transition of "+name)
	if err := s.setEnabled(name, true); err != nil {
		terr.Stuck = "the reversal failed: " + errnoText(err) + "; see kelp list"
		return terr
	}
	w := s.watch(context.Background(), name, Patched, timeout, rep)
	if w.outcome != reached {
		rep.send(Event{Kind: EventBlockers, Patch: name, Target: Patched, Blockers: w.pending, Elapsed: w.elapsed})
		terr.Stuck = fmt.Sprintf("the reversal stalled as well (%s); see kelp list, kelp force %s", blockerSummary(w.pending), name)
		return terr
	}
	terr.Reverted = true
	return terr
}

// UnloadOrder returns the loaded livepatch modules newest first: the order
// in which `unload --all` removes them.
func (s System) UnloadOrder() ([]string, error) {
	mods, err := s.Modules()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a kernel without module support has none
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mods {
		if m.Livepatch() {
			out = append(out, m.Name)
			continue
		}
		if _, err := s.Patch(m.Name); err == nil {
			out = append(out, m.Name)
		}
	}
	return out, nil
}

// ForceOptions tune Force.
type ForceOptions struct {
	// Timeout bounds the wait for the kernel to complete the forced
	// transition (0: 30 s).
	Timeout  time.Duration
	Progress func(Event)
}

// ForceResult is what Force did.
type ForceResult struct {
	Patch string `json:"patch"`
	// Target is the state the forced transition completed to.
	Target State `json:"target"`
	// Blockers are the tasks that were switched by force.
	Blockers []Task   `json:"forced_tasks,omitempty"`
	Warnings []string `json:"warnings"`
}

// Force completes patch name's transition by writing its force attribute,
// after which every task counts as switched. It refuses (a
// *PreflightError) when the patch is not in transition. See ForceWarning.
func (s System) Force(ctx context.Context, name string, opts ForceOptions) (*ForceResult, error) {
	name = PatchName(name)
	rep := reporter(opts.Progress)
	p, err := s.Patch(name)
	if err != nil {
		if errors.Is(err, ErrNotLoaded) {
			return nil, &PreflightError{Target: name, Check: "loaded", Reason: "no patch of that name is loaded (see kelp list)", Err: ErrNotLoaded}
		}
		return nil, &PreflightError{Target: name, Check: "sysfs", Reason: "cannot read the patch state: " + err.Error()}
	}
	if !p.Transition {
		return nil, &PreflightError{Target: name, Check: "transition", Reason: "patch is not in transition: there is nothing to force"}
	}
	target := p.Target()
	sc := s.scanTasks(target)
	res := &ForceResult{Patch: name, Target: target, Blockers: s.describeTasks(sc.Pending), Warnings: []string{ForceWarning}}
	rep.send(Event{Kind: EventBlockers, Patch: name, Target: target, Blockers: res.Blockers})
	rep.warn(name, ForceWarning)
	if err := s.writePatchAttr(name, "force", "1"); err != nil {
		return nil, &KernelError{Patch: name, Op: "force the transition", Err: err}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	w := s.watch(ctx, name, target, timeout, rep)
	if w.outcome != reached {
		return res, &IncompleteError{Patch: name, Reason: "forced, but the transition has not completed after " + timeout.String() + "; see kelp list"}
	}
	return res, nil
}
