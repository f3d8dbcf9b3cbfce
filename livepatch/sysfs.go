package livepatch

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/kmod"
)

// Patch is a livepatch registered with the kernel
// (/sys/kernel/livepatch/<name>). Its name is its module's name.
type Patch struct {
	Name       string `json:"name"`
	Enabled    bool   `json:"enabled"`
	Transition bool   `json:"in_transition"`
	// Replace is the atomic-replace flag; the kernel shows it from Linux
	// 6.11 on ("replace"), nil before.
	Replace *bool `json:"atomic_replace,omitempty"`
	// StackOrder is the patch's place in the stack from Linux 6.14 on
	// ("stack_order", 1 = first loaded), 0 when the kernel does not say.
	StackOrder int      `json:"stack_order,omitempty"`
	Objects    []Object `json:"objects"`
}

// Target is the state the patch is in or moving to: Patched while enabled.
func (p Patch) Target() State {
	if p.Enabled {
		return Patched
	}
	return Unpatched
}

// Object is a patched object: "vmlinux" or a module.
type Object struct {
	Name string `json:"name"`
	// Patched is true when the object's functions are redirected; a
	// target module that is not loaded is not patched.
	Patched bool   `json:"patched"`
	Funcs   []Func `json:"functions"`
}

// Func is a patched function; Sympos is its position among same-named
// symbols of the object (the kernel shows 1 for "unique", 0 in the module).
type Func struct {
	Name   string `json:"name"`
	Sympos int    `json:"sympos"`
}

func (s System) livepatchDir(elem ...string) string {
	return s.path(append([]string{"sys", "kernel", "livepatch"}, elem...)...)
}

// Patches lists the registered livepatches by name. A kernel without
// livepatch support yields an error satisfying
// errors.Is(err, os.ErrNotExist).
func (s System) Patches() ([]Patch, error) {
	entries, err := os.ReadDir(s.livepatchDir())
	if err != nil {
		return nil, err
	}
	var out []Patch
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := s.Patch(e.Name())
		if err != nil {
			continue // removed while we looked
		}
		out = append(out, *p)
	}
	return out, nil
}

// Patch reads one registered patch; errors.Is(err, ErrNotLoaded) when
// there is none of that name.
func (s System) Patch(name string) (*Patch, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("invalid patch name %q", name)
	}
	dir := s.livepatchDir(name)
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("patch %s: %w", name, ErrNotLoaded)
		}
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("patch %s: %s is not a directory", name, dir)
	}
	p := &Patch{Name: name}
	v, err := s.readTrim("sys", "kernel", "livepatch", name, "enabled")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("patch %s: %w", name, ErrNotLoaded)
		}
		return nil, err
	}
	p.Enabled = v == "1"
	if v, err := s.readTrim("sys", "kernel", "livepatch", name, "transition"); err == nil {
		p.Transition = v == "1"
	}
	if v, err := s.readTrim("sys", "kernel", "livepatch", name, "replace"); err == nil {
		r := v == "1"
		p.Replace = &r
	}
	if v, err := s.readInt("sys", "kernel", "livepatch", name, "stack_order"); err == nil {
		p.StackOrder = int(v)
	}
	objs, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if !o.IsDir() {
			continue
		}
		obj := Object{Name: o.Name(), Funcs: []Func{}}
		if v, err := s.readTrim("sys", "kernel", "livepatch", name, o.Name(), "patched"); err == nil {
			obj.Patched = v == "1"
		}
		funcs, err := os.ReadDir(s.livepatchDir(name, o.Name()))
		if err != nil {
			continue
		}
		for _, f := range funcs {
			if !f.IsDir() {
				continue
			}
			fn, pos, _ := strings.Cut(f.Name(), ",")
			n, _ := strconv.Atoi(pos)
			obj.Funcs = append(obj.Funcs, Func{Name: fn, Sympos: n})
		}
		p.Objects = append(p.Objects, obj)
	}
	if p.Objects == nil {
		p.Objects = []Object{}
	}
	return p, nil
}

// Module is a loaded kernel module as listed in /proc/modules.
type Module struct {
	Name     string   `json:"name"`
	Size     int64    `json:"size"`
	Refcount int      `json:"refcount"`
	UsedBy   []string `json:"used_by,omitempty"`
	// State is Live, Loading or Unloading.
	State string `json:"state"`
	// Taint holds the module's taint letters, e.g. "OEK" (K: livepatch).
	Taint string `json:"taint,omitempty"`
}

// Livepatch reports whether the module is a livepatch (taint K).
func (m Module) Livepatch() bool { return strings.ContainsRune(m.Taint, 'K') }

// Modules lists the loaded modules, newest first (the kernel adds each
// module at the head of its list).
func (s System) Modules() ([]Module, error) {
	data, err := os.ReadFile(s.path("proc", "modules"))
	if err != nil {
		return nil, err
	}
	return parseModules(string(data)), nil
}

// parseModules reads /proc/modules lines:
// "name size refcnt used,by, state address [(taint)]".
func parseModules(text string) []Module {
	var out []Module
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		m := Module{Name: f[0], State: f[4]}
		m.Size, _ = strconv.ParseInt(f[1], 10, 64)
		m.Refcount, _ = strconv.Atoi(f[2])
		if f[3] != "-" {
			for _, u := range strings.Split(f[3], ",") {
				if u != "" {
					m.UsedBy = append(m.UsedBy, u)
				}
			}
		}
		if len(f) >= 7 {
			m.Taint = strings.Trim(f[6], "()")
		}
		out = append(out, m)
	}
	return out
}

// module returns the loaded module called name, nil when not loaded.
func (s System) module(name string) (*Module, error) {
	mods, err := s.Modules()
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		if m.Name == name {
			return &m, nil
		}
	}
	return nil, nil
}

// transitioning returns the patch now in transition, nil when none.
func (s System) transitioning() (*Patch, error) {
	ps, err := s.Patches()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	for _, p := range ps {
		if p.Transition {
			return &p, nil
		}
	}
	return nil, nil
}

// sortNewestFirst orders patches newest first: by stack_order when the
// kernel has it, else by their modules' places in /proc/modules.
func sortNewestFirst(ps []Patch, mods []Module) {
	rank := map[string]int{}
	for i, m := range mods {
		rank[m.Name] = i
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.StackOrder != 0 && b.StackOrder != 0 {
			return a.StackOrder > b.StackOrder
		}
		ra, oka := rank[a.Name]
		rb, okb := rank[b.Name]
		if oka != okb {
			return oka
		}
		return ra < rb
	})
}

// Fixes reads what the loaded module name says it fixes, from the note
// kelp builds into a patch module (/sys/module/NAME/notes/.note.kelp).
// ok is false when the module has no such note (not built by kelp, or
// built before kelp recorded it) or it cannot be read.
func (s System) Fixes(name string) (f kmod.Fixes, ok bool) {
	data, err := os.ReadFile(s.path("sys", "module", name, "notes", kmod.NoteSection))
	if err != nil {
		return kmod.Fixes{CVEs: []string{}}, false
	}
	desc, found := kmod.ParseNotes(data, kmod.NoteOwner, kmod.NoteType)
	if !found {
		return kmod.Fixes{CVEs: []string{}}, false
	}
	return kmod.FixesOf(kmod.ParseModinfo(desc)), true
}
