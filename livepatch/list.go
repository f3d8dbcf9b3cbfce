package livepatch

import (
	"errors"
	"os"
	"sort"
)

// Listing is the state of live patching on the running kernel.
type Listing struct {
	// Patches are the registered patches, newest first.
	Patches []PatchInfo `json:"patches"`
	// Leftovers are livepatch modules still loaded whose patch is gone
	// (disabled, or replaced by an atomic-replace patch).
	Leftovers []Module `json:"leftover_modules"`
	// Functions says, for each patched function, whose code runs now.
	Functions []Ownership `json:"functions"`
	// Transition is the transition under way, if any.
	Transition *TransitionInfo `json:"transition,omitempty"`
}

// PatchInfo is a registered patch with its module.
type PatchInfo struct {
	Patch
	Module     *Module `json:"module,omitempty"`
	Srcversion string  `json:"srcversion,omitempty"`
}

// TransitionInfo describes the transition under way.
type TransitionInfo struct {
	Patch    string `json:"patch"`
	Target   State  `json:"target"`
	Switched int    `json:"switched"`
	Total    int    `json:"total"`
}

// Function states in Ownership.
const (
	FuncPatched    = "patched"           // Owner's code runs for every task
	FuncTransition = "transition"        // tasks switched run Owner's code, the others Previous's
	FuncNotLoaded  = "object_not_loaded" // the target module is not loaded
)

// Ownership says which loaded patch's code runs for one patched function.
// The livepatch core keeps a stack of replacements per function; the
// newest enabled patch's version runs. Linux before 6.14 does not show the
// order, so it is derived from module load order (a patch cannot be
// re-enabled, so enable order is load order).
type Ownership struct {
	Object   string `json:"object"`
	Function string `json:"function"`
	Sympos   int    `json:"sympos"`
	// Owner is the patch whose version runs (for a transition: once it
	// completes); "" means the original function.
	Owner string `json:"owner"`
	State string `json:"state"`
	// Previous, during a transition, is the version the tasks not yet
	// switched run ("" for the original).
	Previous string `json:"previous,omitempty"`
	// Stack lists every registered patch that replaces the function,
	// newest first.
	Stack []string `json:"stack"`
}

// List reads the livepatch state of the running kernel.
func (s System) List() (*Listing, error) {
	l := &Listing{Patches: []PatchInfo{}, Leftovers: []Module{}, Functions: []Ownership{}}
	ps, err := s.Patches()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	mods, err := s.Modules()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	sortNewestFirst(ps, mods)
	byName := map[string]Module{}
	for _, m := range mods {
		byName[m.Name] = m
	}
	registered := map[string]bool{}
	for _, p := range ps {
		pi := PatchInfo{Patch: p}
		if m, ok := byName[p.Name]; ok {
			pi.Module = &m
		}
		pi.Srcversion, _ = s.readTrim("sys", "module", p.Name, "srcversion")
		l.Patches = append(l.Patches, pi)
		registered[p.Name] = true
		if p.Transition {
			t := &TransitionInfo{Patch: p.Name, Target: p.Target()}
			sc := s.scanTasks(t.Target)
			t.Switched, t.Total = sc.Switched, sc.Total
			l.Transition = t
		}
	}
	for _, m := range mods {
		if m.Livepatch() && !registered[m.Name] {
			l.Leftovers = append(l.Leftovers, m)
		}
	}
	l.Functions = Ownerships(ps)
	return l, nil
}

type funcKey struct {
	obj, fn string
	pos     int
}

// Ownerships computes, from patches ordered newest first, which patch's
// version of each function runs.
func Ownerships(newestFirst []Patch) []Ownership {
	type entry struct {
		patch   Patch
		patched bool
	}
	stacks := map[funcKey][]entry{}
	var keys []funcKey
	for _, p := range newestFirst {
		for _, o := range p.Objects {
			for _, f := range o.Funcs {
				k := funcKey{o.Name, f.Name, f.Sympos}
				if _, ok := stacks[k]; !ok {
					keys = append(keys, k)
				}
				stacks[k] = append(stacks[k], entry{p, o.Patched})
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.obj != b.obj {
			return a.obj < b.obj
		}
		if a.fn != b.fn {
			return a.fn < b.fn
		}
		return a.pos < b.pos
	})
	out := make([]Ownership, 0, len(keys))
	for _, k := range keys {
		o := Ownership{Object: k.obj, Function: k.fn, Sympos: k.pos, Stack: []string{}}
		// Active versions: patches whose object is patched and which are
		// enabled or still unpatching (a disabled, settled patch is no
		// longer on the function's stack).
		var active []Patch
		for _, e := range stacks[k] {
			o.Stack = append(o.Stack, e.patch.Name)
			if e.patched && (e.patch.Enabled || e.patch.Transition) {
				active = append(active, e.patch)
			}
		}
		next := func() string {
			if len(active) > 1 {
				return active[1].Name
			}
			return ""
		}
		switch {
		case len(active) == 0:
			o.State = FuncNotLoaded
			for _, e := range stacks[k] {
				if e.patched {
					// Patched objects but no enabled patch: disabled and
					// settled, the original runs.
					o.State = FuncPatched
				}
			}
		case active[0].Transition && active[0].Enabled:
			o.State, o.Owner, o.Previous = FuncTransition, active[0].Name, next()
		case active[0].Transition:
			o.State, o.Owner, o.Previous = FuncTransition, next(), active[0].Name
		default:
			o.State, o.Owner = FuncPatched, active[0].Name
		}
		out = append(out, o)
	}
	return out
}

// LoadedModule is what the kernel shows about a loaded patch module.
type LoadedModule struct {
	Name string `json:"name"`
	// Module is its /proc/modules entry; nil when only the patch is left.
	Module     *Module `json:"module,omitempty"`
	Srcversion string  `json:"srcversion,omitempty"`
	Version    string  `json:"version,omitempty"`
	InitState  string  `json:"init_state,omitempty"`
	// Patch is its registered patch; nil when disabled or replaced.
	Patch *Patch `json:"patch,omitempty"`
	// Params are the module's parameters and their current values.
	Params map[string]string `json:"params,omitempty"`
}

// Loaded describes a loaded patch module by name; errors.Is(err,
// ErrNotLoaded) when there is neither a module nor a patch of that name.
func (s System) Loaded(name string) (*LoadedModule, error) {
	name = PatchName(name)
	lm := &LoadedModule{Name: name}
	m, err := s.module(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	lm.Module = m
	p, err := s.Patch(name)
	switch {
	case err == nil:
		lm.Patch = p
	case !errors.Is(err, ErrNotLoaded):
		return nil, err
	}
	if lm.Module == nil && lm.Patch == nil {
		return nil, &PreflightError{Target: name, Check: "loaded", Reason: "no patch or module of that name is loaded", Err: ErrNotLoaded}
	}
	lm.Srcversion, _ = s.readTrim("sys", "module", name, "srcversion")
	lm.Version, _ = s.readTrim("sys", "module", name, "version")
	lm.InitState, _ = s.readTrim("sys", "module", name, "initstate")
	if ents, err := os.ReadDir(s.path("sys", "module", name, "parameters")); err == nil {
		lm.Params = map[string]string{}
		for _, e := range ents {
			v, err := s.readTrim("sys", "module", name, "parameters", e.Name())
			if err != nil {
				v = "(unreadable)"
			}
			lm.Params[e.Name()] = v
		}
	}
	return lm, nil
}
