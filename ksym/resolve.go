package ksym

import (
	"fmt"

	"github.com/kelp-project/kelp/elfobj"
)

// Ref is a reference from patch code to a symbol of the running kernel.
type Ref struct {
	// Symbol is the symbol as the original unit has it: defined there
	// (Section != nil) or undefined (defined in another unit or object).
	Symbol *elfobj.Symbol
}

// Kind says how a reference is resolved when the patch module loads.
type Kind string

const (
	// Exported symbols are resolved by the module loader like any
	// module's undefined symbols, and carry a MODVERSIONS CRC.
	Exported Kind = "exported"
	// Livepatch symbols are resolved by the livepatch core through
	// kallsyms: ".klp.sym.<object>.<name>,<sympos>".
	Livepatch Kind = "livepatch"
)

// Binding is where a reference goes in the running kernel.
type Binding struct {
	Kind   Kind   `json:"kind"`
	Object string `json:"object"` // vmlinux or a module name
	Name   string `json:"name"`
	Sympos int    `json:"sympos"`
	CRC    uint32 `json:"crc,omitempty"` // Exported only
}

// Kernel is what is known about the symbols of a target kernel.
type Kernel struct {
	Vmlinux *Table            // kallsyms order of vmlinux
	Modules map[string]*Table // by module name; .ko tables when available
	Exports Symvers           // Module.symvers of the target
}

// Resolver resolves the references of one unit: the original object
// Unit, linked into Object (vmlinux or a module name).
type Resolver struct {
	Kernel  *Kernel
	Object  string
	Unit    *elfobj.File
	File    string // the unit's source file name when not its STT_FILE
	locator *Locator
}

// Resolve says how ref reaches the running kernel: through the loader
// when vmlinux exports the symbol (only vmlinux's exports: module
// exports would make the patch depend on the module being loaded first),
// through the livepatch core otherwise.
func (r *Resolver) Resolve(ref Ref) (Binding, error) {
	s := ref.Symbol
	k := r.Kernel
	if e, ok := k.Exports[s.Name]; ok && e.Object == Vmlinux && !s.IsLocal() && (s.IsUndefined() || r.Object == Vmlinux) {
		return Binding{Kind: Exported, Object: Vmlinux, Name: s.Name, CRC: e.CRC}, nil
	}
	if !s.IsUndefined() {
		return r.Locate(ref)
	}
	// Defined elsewhere: in the unit's own module, an exporting module,
	// or vmlinux.
	var objs []string
	if r.Object != Vmlinux {
		objs = append(objs, r.Object)
	}
	if e, ok := k.Exports[s.Name]; ok && e.Object != Vmlinux && e.Object != r.Object {
		objs = append(objs, e.Object)
	}
	objs = append(objs, Vmlinux)
	for _, obj := range objs {
		t, err := r.table(obj)
		if err != nil {
			if obj == Vmlinux {
				return Binding{}, err
			}
			continue
		}
		pos, ok, err := globalSympos(t, s.Name)
		if err != nil {
			return Binding{}, err
		}
		if ok {
			return Binding{Kind: Livepatch, Object: obj, Name: s.Name, Sympos: pos}, nil
		}
	}
	return Binding{}, &NotFoundError{Object: fmt.Sprint(objs), Name: s.Name}
}

// Locate finds a symbol the unit defines for the livepatch core, exported
// or not: the klp_func of a changed function names it this way.
func (r *Resolver) Locate(ref Ref) (Binding, error) {
	s := ref.Symbol
	if s.IsUndefined() {
		return Binding{}, fmt.Errorf("%s is not defined by the unit", s.Name)
	}
	t, err := r.table(r.Object)
	if err != nil {
		return Binding{}, err
	}
	if r.locator == nil || r.locator.Table != t {
		r.locator = NewLocator(t, r.Unit, r.File)
	}
	pos, err := r.locator.Sympos(s)
	if err != nil {
		return Binding{}, err
	}
	return Binding{Kind: Livepatch, Object: r.Object, Name: s.Name, Sympos: pos}, nil
}

func (r *Resolver) table(obj string) (*Table, error) {
	if obj == Vmlinux {
		if r.Kernel.Vmlinux == nil {
			return nil, fmt.Errorf("no symbol table for vmlinux")
		}
		return r.Kernel.Vmlinux, nil
	}
	if t := r.Kernel.Modules[obj]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("no symbol table for module %s (give its .ko)", obj)
}

// globalSympos finds the global definition of name in t: ok is false when
// t has none.
func globalSympos(t *Table, name string) (pos int, ok bool, err error) {
	idx := t.Lookup(name)
	var globals []int
	for i, k := range idx {
		if t.Syms[k].Global() {
			globals = append(globals, i)
		}
	}
	switch {
	case len(globals) == 0:
		return 0, false, nil
	case len(globals) > 1:
		return 0, false, fmt.Errorf("%s has %d global symbols called %s", t.Object, len(globals), name)
	case len(idx) == 1:
		return 0, true, nil
	}
	return globals[0] + 1, true, nil
}

// Runs reports whether the running kernel's definition of a __weak
// symbol the unit defines is provably the unit's own: kallsyms lists it
// as weak (no strong override was linked) and it lines up with the
// unit's neighbouring symbols, or its recorded source file is the
// unit's. why says how, or why it cannot tell.
func (r *Resolver) Runs(ref Ref) (bool, string, error) {
	s := ref.Symbol
	if s.IsUndefined() {
		return false, "", fmt.Errorf("%s is not defined by the unit", s.Name)
	}
	t, err := r.table(r.Object)
	if err != nil {
		return false, "", err
	}
	var weak, strong []int
	for _, k := range t.Lookup(s.Name) {
		switch t.Syms[k].Type {
		case 'W', 'V', 'w', 'v':
			weak = append(weak, k)
		default:
			if t.Syms[k].Global() {
				strong = append(strong, k)
			}
		}
	}
	switch {
	case len(strong) > 0:
		return false, fmt.Sprintf("%s's %s is a strong definition from another unit", t.Object, s.Name), nil
	case len(weak) == 0:
		return false, fmt.Sprintf("%s has no weak symbol %s", t.Object, s.Name), nil
	case len(weak) > 1:
		return false, fmt.Sprintf("%s has %d weak symbols %s", t.Object, len(weak), s.Name), nil
	}
	if r.locator == nil || r.locator.Table != t {
		r.locator = NewLocator(t, r.Unit, r.File)
	}
	k := weak[0]
	if t.Files && t.Syms[k].File != "" && t.Syms[k].File == r.locator.unit.file {
		return true, "defined in " + t.Syms[k].File, nil
	}
	if r.locator.anchored(s, k) {
		return true, "its kallsyms neighbours are the unit's", nil
	}
	return false, fmt.Sprintf("the weak %s in %s cannot be tied to this unit (no neighbouring symbol of the unit with a unique name)", s.Name, t.Object), nil
}
