package objdiff

import (
	"debug/elf"
	"fmt"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/ksym"
)

// DefinitionProver is implemented by resolvers that can tell whether the
// running kernel runs the unit's own definition of a symbol, not another
// unit's definition of the same name (a __weak default overridden by a
// strong definition elsewhere). *ksym.Resolver is one.
type DefinitionProver interface {
	// Runs reports whether the definition the livepatch core finds for
	// the unit's symbol is provably the unit's own; why says how (or why
	// not).
	Runs(ksym.Ref) (ok bool, why string, err error)
}

// checkSections refuses correlated elements that move to a section of
// another kind: data gaining or losing const, __read_mostly,
// __ro_after_init, __initdata or __initconst, or moving between .data,
// .rodata and .bss (the patched code would treat the running kernel's
// copy as what it is not, e.g. write to memory the kernel keeps
// read-only), and functions moving into or out of __init, noinstr and
// other special text sections.
func (d *differ) checkSections() {
	d.moved = map[*elem]bool{}
	for _, pe := range d.p.elems {
		oe := pe.twin
		if oe == nil || pe.gen {
			continue
		}
		os, ps := oe.sec, pe.sec
		name := oe.sym.Name
		if pe.fn {
			if oc, pc := textKind(os.Name), textKind(ps.Name); oc != pc {
				d.refuse(name, ps.Name, fmt.Sprintf("function moves from %s to %s code (section %s → %s)", oc, pc, os.Name, ps.Name),
					"keep the function's section attributes (__init, noinstr, __sched, ...) unchanged; add a new function instead")
			}
			continue
		}
		oc, pc := ksym.SectionClass(os.Name), ksym.SectionClass(ps.Name)
		const flags = elf.SHF_WRITE | elf.SHF_ALLOC | elf.SHF_EXECINSTR | elf.SHF_TLS
		switch {
		case oc == ".bss" && pc == ".data" || oc == ".data" && pc == ".bss":
			// A new initial value: refused as changed data (classify).
		case oc != pc:
			d.moved[pe] = true
			d.refuse(name, ps.Name, fmt.Sprintf("existing variable moves from section %s to %s (%s → %s): the running kernel keeps it %s",
				os.Name, ps.Name, dataKind(os), dataKind(ps), dataKind(os)),
				"keep the variable's section attributes (const, __read_mostly, __ro_after_init, __initdata) unchanged; use a new variable or a shadow variable")
		case os.Flags&flags != ps.Flags&flags || os.Type != ps.Type:
			d.moved[pe] = true
			d.refuse(name, ps.Name, fmt.Sprintf("existing variable's section flags change (%s → %s)", dataKind(os), dataKind(ps)),
				"keep the variable's declaration unchanged; use a new variable or a shadow variable")
		case os.Addralign != ps.Addralign && oe.whole() && pe.whole():
			d.refuse(name, ps.Name, fmt.Sprintf("existing variable's alignment changes from %d to %d bytes: the running kernel's copy keeps the old one", os.Addralign, ps.Addralign),
				"keep the variable's alignment attributes unchanged")
		}
	}
}

// textKind names the kind of code a text section holds, ignoring the
// hot/unlikely subsections the compiler may move code between.
func textKind(sec string) string {
	if initSection(sec) {
		return initKind(sec)
	}
	switch c := ksym.SectionClass(sec); c {
	case ".text", ".text.unlikely", ".text.hot", ".text.unknown":
		return "ordinary"
	default:
		return c
	}
}

// dataKind describes a data section for messages.
func dataKind(s *elfobj.Section) string {
	c := ksym.SectionClass(s.Name)
	var w []string
	switch {
	case strings.Contains(c, "ro_after_init"):
		w = append(w, "read-only after init")
	case s.Flags&elf.SHF_WRITE == 0:
		w = append(w, "read-only")
	case strings.Contains(c, "read_mostly"):
		w = append(w, "writable, read-mostly")
	default:
		w = append(w, "writable")
	}
	if s.Type == elf.SHT_NOBITS {
		w = append(w, "zero-initialised")
	}
	if initSection(s.Name) {
		w = append(w, "freed after init")
	}
	return strings.Join(w, ", ")
}

// checkWeak refuses a changed __weak function unless the resolver proves
// that the running kernel runs this unit's definition: when another unit
// overrides it, the livepatch core would find the override by name and
// replace it with the default's patched body.
func (d *differ) checkWeak() {
	for _, pe := range d.p.elems {
		if pe.status != changed || !pe.fn || pe.twin.sym.Bind != elf.STB_WEAK {
			continue
		}
		name := pe.twin.sym.Name
		prover, ok := d.in.Resolver.(DefinitionProver)
		if !ok {
			d.refuse(name, pe.sec.Name, "changed __weak function: cannot tell whether the running kernel runs this definition or a strong one elsewhere",
				"patch the definition the kernel runs (the strong override, if there is one)")
			continue
		}
		runs, why, err := prover.Runs(ksym.Ref{Symbol: pe.twin.sym})
		if err != nil {
			why = err.Error()
		}
		if !runs {
			d.refuse(name, pe.sec.Name, "changed __weak function that the running kernel may not run ("+why+"): a strong definition elsewhere would be replaced by this default",
				"patch the strong override instead, or leave the __weak default unchanged")
		}
	}
}

// staticLocal reports whether e is a function-scope static variable: a
// local data object the compiler numbered ("count.12").
func staticLocal(e *elem) bool {
	return !e.fn && !e.gen && e.sym.IsLocal() && e.key != e.sym.Name && !strings.HasSuffix(e.key, ".cold")
}

// checkStaticLocals refuses a patch in which a function that referenced
// a static local no longer references its correlated twin: the patched
// function would silently start from a fresh variable (its state reset),
// or the variables were correlated wrongly.
func (d *differ) checkStaticLocals() {
	for _, of := range d.o.elems {
		if !of.fn || of.twin == nil {
			continue
		}
		pf := of.twin
		seen := map[*elem]bool{}
		for _, r := range d.o.relocsIn(of.sec, of.off, of.size) {
			t := d.o.target(of.sec, r)
			v := t.e
			if v == nil || !staticLocal(v) || seen[v] {
				continue
			}
			seen[v] = true
			if v.twin == nil {
				d.refuse(v.sym.Name, pf.sec.Name, fmt.Sprintf("reference to static local variable %s in %s was removed: the patched code would start from a new variable, not the running kernel's", v.sym.Name, of.sym.Name),
					"keep the static local (same name, in the same function), or move its state to a shadow variable")
				continue
			}
			found := false
			for _, pr := range d.p.relocsIn(pf.sec, pf.off, pf.size) {
				if d.p.target(pf.sec, pr).e == v.twin {
					found = true
					break
				}
			}
			if !found && !d.referencedViaPiece(pf, v.twin) {
				d.refuse(v.sym.Name, pf.sec.Name, fmt.Sprintf("static local %s is correlated with %s, but patched %s no longer references it", v.sym.Name, v.twin.sym.Name, pf.sym.Name),
					"keep the reference to the static local in its function, or rename the variable if the new code needs a fresh one")
			}
		}
	}
}

// referencedViaPiece reports whether a .cold or .part piece of f (or a
// piece's piece) references v: the compiler may move a reference out of
// the function's body into its pieces.
func (d *differ) referencedViaPiece(f, v *elem) bool {
	for _, e := range d.p.elems {
		if e == f || !e.fn || !(e.cold || e.part) || !strings.HasPrefix(e.key, f.key+".") {
			continue
		}
		for _, r := range d.p.relocsIn(e.sec, e.off, e.size) {
			if d.p.target(e.sec, r).e == v {
				return true
			}
		}
	}
	return false
}

// metaKind names the module metadata a section holds, "" for others.
func metaKind(sec string) string {
	switch {
	case strings.HasPrefix(sec, "___ksymtab") || strings.HasPrefix(sec, "__ksymtab") || strings.HasPrefix(sec, "__kcrctab") || sec == ".export_symbol":
		return "export"
	case sec == "__param" || strings.HasPrefix(sec, "__param."):
		return "module parameter"
	case sec == "__modver":
		return "module version"
	case sec == ".modinfo":
		return "module information"
	}
	return ""
}

// checkMetadata refuses new, removed or changed exports, module
// parameters and .modinfo entries: a livepatch module cannot add them to
// the object it patches (the kernel reads them once, when that object
// loads), so the patched code would rely on something that never exists.
func (d *differ) checkMetadata() {
	names := func(s *side) map[string]*elem {
		m := map[string]*elem{}
		for _, e := range s.elems {
			if k := metaKind(e.sec.Name); k != "" && k != "module information" && k != "export" {
				m[e.sym.Name] = e
			}
		}
		return m
	}
	om, pm := names(d.o), names(d.p)
	var all []string
	for n := range pm {
		all = append(all, n)
	}
	for n := range om {
		if pm[n] == nil {
			all = append(all, n)
		}
	}
	sort.Strings(all)
	for _, n := range all {
		oe, pe := om[n], pm[n]
		switch {
		case oe == nil:
			k := metaKind(pe.sec.Name)
			d.refuse(n, pe.sec.Name, "new "+k+": a livepatch cannot add "+k+"s to the object it patches", metaHint(k))
		case pe == nil:
			k := metaKind(oe.sec.Name)
			d.refuse(n, oe.sec.Name, k+" removed: a livepatch cannot remove it from the running kernel", metaHint(k))
		case pe.twin != oe:
			k := metaKind(pe.sec.Name)
			d.refuse(n, pe.sec.Name, k+" changes: it no longer matches the running kernel's", metaHint(k))
		default:
			if why, _ := diff(pe); why != "" {
				k := metaKind(pe.sec.Name)
				d.refuse(n, pe.sec.Name, k+" changes ("+why+"): the running kernel keeps the old one", metaHint(k))
			}
		}
	}
	oex, pex := exports(d.in.Orig), exports(d.in.Patched)
	for _, x := range setDiff(pex, oex) {
		sec, sym, _ := strings.Cut(x, "+")
		d.refuse(sym, sec, "new export: a livepatch cannot add exports to the object it patches", metaHint("export"))
	}
	for _, x := range setDiff(oex, pex) {
		sec, sym, _ := strings.Cut(x, "+")
		d.refuse(sym, sec, "export removed: a livepatch cannot remove it from the running kernel", metaHint("export"))
	}
	ostr, pstr := modinfo(d.in.Orig), modinfo(d.in.Patched)
	for _, s := range setDiff(pstr, ostr) {
		d.refuse(s, ".modinfo", "new module information: the running kernel never reads a livepatch's changes to it", "drop the MODULE_*() or module_param() change from the patch")
	}
	for _, s := range setDiff(ostr, pstr) {
		d.refuse(s, ".modinfo", "module information removed: the running kernel keeps it", "drop the MODULE_*() or module_param() change from the patch")
	}
}

func metaHint(kind string) string {
	switch kind {
	case "export":
		return "keep the EXPORT_SYMBOL*() lines unchanged; code in the patch module can call the function without exporting it"
	case "module parameter":
		return "keep module_param() unchanged; expose a new setting through the patch module's own parameter or a sysfs file"
	}
	return ""
}

// exports returns f's exports as "section+name", sorted. Up to Linux 6.4
// EXPORT_SYMBOL() emits one section per symbol ("___ksymtab_gpl+name"),
// with a label rather than an object symbol; from 6.5 one entry in
// .export_symbol, labelled __export_symbol_<name>, for modpost.
func exports(f *elfobj.File) []string {
	var out []string
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, "___ksymtab") && strings.Contains(s.Name, "+") {
			out = append(out, s.Name)
		}
	}
	for _, sym := range f.Symbols {
		if name, ok := strings.CutPrefix(sym.Name, "__export_symbol_"); ok && sym.Section != nil && sym.Section.Name == ".export_symbol" {
			out = append(out, ".export_symbol+"+name)
		}
	}
	sort.Strings(out)
	return out
}

// modinfo returns the strings of f's .modinfo section, sorted.
func modinfo(f *elfobj.File) []string {
	var out []string
	for _, s := range f.Sections {
		if s.Name != ".modinfo" || s.Type == elf.SHT_NOBITS {
			continue
		}
		for _, v := range strings.Split(string(s.Data), "\x00") {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

// setDiff returns the members of a (sorted) missing from b, each once.
func setDiff(a, b []string) []string {
	in := map[string]int{}
	for _, s := range b {
		in[s]++
	}
	var out []string
	for _, s := range a {
		if in[s] > 0 {
			in[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}
