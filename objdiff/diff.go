package objdiff

import (
	"debug/elf"
	"fmt"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/refusal"
)

// Resolver says where a symbol of the original unit lives in the running
// kernel. *ksym.Resolver is one.
type Resolver interface {
	// Resolve tells how a reference from the patch reaches the symbol.
	Resolve(ksym.Ref) (ksym.Binding, error)
	// Locate finds the symbol for the livepatch core (klp_func old_name
	// and old_sympos), exported or not.
	Locate(ksym.Ref) (ksym.Binding, error)
}

// Input is one translation unit compiled before and after a patch, with
// -ffunction-sections -fdata-sections, and what is known about the target.
type Input struct {
	Unit    string // the object's path in the tree, for messages
	Object  string // "vmlinux" or the name of the module the unit is linked into
	Orig    *elfobj.File
	Patched *elfobj.File
	Layouts Layouts
	// Resolver locates the unit's and other objects' symbols in the
	// running kernel.
	Resolver Resolver
	// Provided names the globals that other units of the same patch
	// define anew; references to them stay inside the patch module.
	Provided map[string]bool
	// OrigCRCs and PatchedCRCs are the MODVERSIONS CRCs of the symbols
	// the unit exports, before and after (nil: not checked).
	OrigCRCs, PatchedCRCs map[string]uint32
}

// Result is the output object, holding exactly what the patch module
// needs from this unit (nil when nothing changed or the patch is refused),
// and the report.
type Result struct {
	Object *elfobj.File
	Report *Report
}

// Diff compares the two compilations of a unit. It returns a
// *refusal.Error (with the Result and its report) when a change cannot be
// live patched, and other errors for inputs it cannot read.
func Diff(in Input) (*Result, error) {
	for _, f := range []*elfobj.File{in.Orig, in.Patched} {
		if f == nil || f.Machine != elf.EM_X86_64 {
			return nil, fmt.Errorf("objdiff: %s: want two x86-64 objects", in.Unit)
		}
	}
	if in.Object == "" {
		in.Object = ksym.Vmlinux
	}
	o, err := newSide(in.Orig, true, in.Layouts)
	if err != nil {
		return nil, fmt.Errorf("objdiff: %s: original: %w", in.Unit, err)
	}
	p, err := newSide(in.Patched, false, in.Layouts)
	if err != nil {
		return nil, fmt.Errorf("objdiff: %s: patched: %w", in.Unit, err)
	}
	correlate(o, p)
	d := &differ{in: in, o: o, p: p, rep: &Report{Unit: in.Unit, Object: in.Object}, bindings: map[*elfobj.Symbol]bindingOrErr{}}
	d.checkGroups()
	d.checkSections()
	d.checkStaticLocals()
	d.classify()
	d.checkWeak()
	d.checkMetadata()
	d.checkCensus()
	d.checkCRCs()
	d.include()
	d.keepEntries()
	if len(d.rep.Refusals) == 0 && d.anything() {
		d.build()
	}
	res := &Result{Report: d.rep}
	if len(d.rep.Refusals) > 0 {
		return res, &refusal.Error{Reasons: d.rep.Refusals}
	}
	res.Object = d.out
	return res, nil
}

type bindingOrErr struct {
	b   ksym.Binding
	err error
}

type differ struct {
	in   Input
	o, p *side
	rep  *Report

	anon map[*elfobj.Section]bool // anonymous sections included whole
	// live holds, for a section of replacement code (replacementPool),
	// the byte ranges the kept alternatives use: only their relocations
	// are followed and written. The rest of the section is copied but
	// never runs (no kept entry makes the kernel copy it anywhere), so
	// what it references is not carried, nor refused.
	live     map[*elfobj.Section][][2]uint64
	moved    map[*elem]bool // data refused for moving to another kind of section
	kept     map[*elfobj.Section][]entry
	bindings map[*elfobj.Symbol]bindingOrErr
	out      *elfobj.File

	// follow and drain extend the included set (see include).
	follow func(from *elfobj.Section, rs []elfobj.Reloc)
	drain  func()
}

func (d *differ) refuse(sym, sec, reason, hint string) {
	r := refusal.Reason{Unit: d.in.Unit, Symbol: sym, Section: sec, Reason: reason, Hint: hint}
	for _, o := range d.rep.Refusals {
		if o == r {
			return
		}
	}
	d.rep.Refusals = append(d.rep.Refusals, r)
}

// ignore records a difference kelp deliberately leaves out of the patch.
func (d *differ) ignore(sym, sec, what, reason string) {
	d.rep.Ignored = append(d.rep.Ignored, Ignored{Symbol: sym, Section: sec, What: what, Reason: reason})
}

func (d *differ) warn(format string, args ...any) {
	d.rep.Warnings = append(d.rep.Warnings, fmt.Sprintf(format, args...))
}

// classify decides, for every element of the patched unit, whether it is
// new, changed or unchanged, and refuses the changes a livepatch cannot
// carry.
func (d *differ) classify() {
	for _, pe := range d.p.elems {
		oe := pe.twin
		if oe == nil {
			continue
		}
		if oe.sym.Bind != pe.sym.Bind || oe.sym.Type != pe.sym.Type {
			d.refuse(oe.sym.Name, pe.sec.Name, fmt.Sprintf("symbol changes from %s %s to %s %s", bindName(oe.sym.Bind), typeName(oe.sym.Type), bindName(pe.sym.Bind), typeName(pe.sym.Type)),
				"keep the symbol's binding and type (add a new function instead of making an existing one static or global)")
			continue
		}
		why, lines := diff(pe)
		if lines != nil {
			d.rep.LineOnly = append(d.rep.LineOnly, oe.sym.Name)
			for _, l := range lines {
				d.ignore(oe.sym.Name, pe.sec.Name, "__LINE__ immediate", l.String())
			}
			continue
		}
		if why == "" {
			for _, sec := range lineFieldsDiffer(oe, pe) {
				d.ignore(oe.sym.Name, sec, "__LINE__ field", "the line number its entries report moved; the code is unchanged")
			}
		}
		if why != "" {
			pe.status = changed
			pe.reasons = append(pe.reasons, why)
		}
	}
	d.propagate()
	for _, pe := range d.p.elems {
		if pe.status != changed {
			continue
		}
		name, sec := pe.twin.sym.Name, pe.sec.Name
		switch {
		case initSection(sec):
			d.refuse(name, sec, "changed "+initKind(sec)+" "+kindName(pe)+" ("+strings.Join(pe.reasons, "; ")+"): it ran at boot or module load and its memory is gone",
				"leave it unchanged and redo its effect in a post-patch callback")
		case pe.fn && !pe.cold && !pe.part && !hasFentry(pe.twin):
			d.refuse(name, sec, "changed function ("+strings.Join(pe.reasons, "; ")+") has no fentry call (notrace, noinstr or lib-y code) so ftrace cannot redirect it",
				"patch its callers instead")
		case !pe.fn && d.moved[pe]:
			// Refused by checkSections.
		case !pe.fn && dataSection(sec):
			if pe.size != pe.twin.size {
				d.refuse(name, sec, fmt.Sprintf("size of existing data changes from %d to %d bytes", pe.twin.size, pe.size),
					"keep the object's layout and put new fields in a shadow variable (klp_shadow_alloc)")
			} else {
				d.refuse(name, sec, "existing data changes ("+strings.Join(pe.reasons, "; ")+"); the running kernel keeps its own copy and state",
					"use a shadow variable, or change the value from a callback")
			}
		case !pe.fn && metaKind(sec) != "":
			// Refused by checkMetadata.
		case !pe.fn:
			d.refuse(name, sec, "existing object in "+sec+" changes ("+strings.Join(pe.reasons, "; ")+"): a livepatch cannot carry it, the running kernel keeps its own copy",
				"leave the object unchanged; change the code that uses it, or use a shadow variable")
		}
	}
}

// propagate marks the parents of changed .cold and .part pieces changed:
// a .cold fragment is part of its parent's body, and a .part piece is
// only ever called from the (possibly inlined) head of its parent.
func (d *differ) propagate() {
	for more := true; more; {
		more = false
		for _, pe := range d.p.elems {
			if pe.status != changed || (!pe.cold && !pe.part) {
				continue
			}
			var parents []*elem
			if pe.cold {
				parents = d.p.byKey[strings.TrimSuffix(pe.key, ".cold")]
			}
			for _, e := range d.p.elems {
				if e.fn && e != pe && d.p.referrers[pe][e.key] {
					parents = append(parents, e)
				}
			}
			for _, parent := range parents {
				if parent.twin == nil || parent.status == changed || parent.cold && !pe.cold {
					continue
				}
				parent.status = changed
				parent.reasons = append(parent.reasons, fmt.Sprintf("its piece %s changed", pe.sym.Name))
				more = true
			}
		}
	}
}

// checkGroups refuses changes to section groups (COMDAT): the kernel
// does not use them, and a changed one cannot be reconciled.
func (d *differ) checkGroups() {
	groups := func(f *elfobj.File) map[string]string {
		m := map[string]string{}
		for _, s := range f.Sections {
			if s.Type != elf.SHT_GROUP || s.Group == nil {
				continue
			}
			var members []string
			for _, x := range s.Group.Members {
				members = append(members, x.Name)
			}
			sig := ""
			if s.Group.Signature != nil {
				sig = s.Group.Signature.Name
			}
			m[sig] = strings.Join(members, ",")
		}
		return m
	}
	og, pg := groups(d.in.Orig), groups(d.in.Patched)
	var sigs []string
	for s := range pg {
		sigs = append(sigs, s)
	}
	for s := range og {
		if _, ok := pg[s]; !ok {
			sigs = append(sigs, s)
		}
	}
	sort.Strings(sigs)
	for _, s := range sigs {
		if og[s] != pg[s] {
			d.refuse(s, ".group", "section group changes", "")
		}
	}
}

// checkCRCs refuses a patch that changes the MODVERSIONS CRC of a symbol
// the unit exports: modules built against the old prototype would pass
// the wrong arguments.
func (d *differ) checkCRCs() {
	if d.in.OrigCRCs == nil || d.in.PatchedCRCs == nil {
		return
	}
	var names []string
	for n := range d.in.PatchedCRCs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if old, ok := d.in.OrigCRCs[n]; ok && old != d.in.PatchedCRCs[n] {
			d.refuse(n, "", fmt.Sprintf("the CRC of the exported symbol changes (%#08x → %#08x): a type in its prototype changed", old, d.in.PatchedCRCs[n]),
				"keep the exported prototype and its types unchanged; add a new function for the new interface")
		}
	}
}

func hasFentry(e *elem) bool {
	for _, r := range e.side.relocsIn(e.sec, e.off, 16) {
		if r.Symbol != nil && (r.Symbol.Name == "__fentry__" || r.Symbol.Name == "mcount") {
			return true
		}
	}
	return false
}

func initSection(name string) bool {
	for _, p := range []string{".init.", ".exit.", ".meminit.", ".memexit.", ".head.text"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func initKind(sec string) string {
	if strings.Contains(sec, "exit") {
		return "__exit"
	}
	return "__init"
}

func kindName(e *elem) string {
	if e.fn {
		return "function"
	}
	return "data"
}

// dataSection reports whether sec holds ordinary variables (whose changes
// a livepatch cannot make) rather than kernel metadata.
func dataSection(sec string) bool {
	c := ksym.SectionClass(sec)
	for _, p := range []string{".data", ".bss", ".rodata"} {
		if c == p || strings.HasPrefix(c, p+"..") || strings.HasPrefix(c, p+".") {
			return true
		}
	}
	return false
}

// codeOrData reports whether new elements of sec belong in a patch.
func codeOrData(sec string) bool {
	if initSection(sec) {
		return false
	}
	c := ksym.SectionClass(sec)
	return dataSection(sec) || c == ".text" || strings.HasPrefix(c, ".text.") || strings.HasSuffix(c, ".text")
}

func bindName(b elf.SymBind) string {
	return strings.ToLower(strings.TrimPrefix(b.String(), "STB_"))
}

func typeName(t elf.SymType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "STT_"))
}

func (d *differ) anything() bool {
	for _, e := range d.p.elems {
		if e.included {
			return true
		}
	}
	return false
}
