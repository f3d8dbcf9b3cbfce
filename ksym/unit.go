package ksym

import (
	"debug/elf"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// A unit is what one compiled translation unit tells about the layout of
// its symbols in the kernel: for each class of output section, the groups
// of symbols that share an address, in emission order.
type unit struct {
	file    string
	classes map[string][]group
	where   map[*elfobj.Symbol]place
	// locals are the unit's locals a module's table lists (ModuleTable:
	// named, in an allocated section the loader keeps), in symbol-table
	// order.
	locals []*elfobj.Symbol
}

type group []*elfobj.Symbol

type place struct {
	class string
	index int // group index within the class
}

func newUnit(f *elfobj.File) *unit {
	u := &unit{classes: map[string][]group{}, where: map[*elfobj.Symbol]place{}}
	type entry struct {
		sym *elfobj.Symbol
		sec int
	}
	var defs []entry
	for _, s := range f.Symbols {
		if s.Type == elf.STT_FILE && u.file == "" {
			u.file = s.Name
		}
		if !Listable(s) {
			continue
		}
		if s.IsLocal() && moduleKeeps(s.Section.Name) {
			u.locals = append(u.locals, s)
		}
		defs = append(defs, entry{s, s.Section.Index})
	}
	// Emission order: sections in file order (gas creates them as the
	// compiler first switches to them), symbols by address within one.
	sort.SliceStable(defs, func(i, j int) bool {
		if defs[i].sec != defs[j].sec {
			return defs[i].sec < defs[j].sec
		}
		return defs[i].sym.Value < defs[j].sym.Value
	})
	for i, d := range defs {
		c := SectionClass(d.sym.Section.Name)
		gs := u.classes[c]
		if i > 0 && len(gs) > 0 && defs[i-1].sec == d.sec && defs[i-1].sym.Value == d.sym.Value {
			gs[len(gs)-1] = append(gs[len(gs)-1], d.sym)
		} else {
			gs = append(gs, group{d.sym})
		}
		u.classes[c] = gs
		u.where[d.sym] = place{c, len(gs) - 1}
	}
	return u
}

// moduleKeeps tells whether a module's symbols in the section named name
// stay in its table once loaded: the module linker script drops
// .discard sections, and the loader keeps no symbol of an init section.
func moduleKeeps(name string) bool {
	return !strings.HasPrefix(name, ".init") && !strings.HasPrefix(name, ".discard")
}

// Listable reports whether kallsyms can list s: a named function, object
// or plain label defined in an allocated section.
func Listable(s *elfobj.Symbol) bool {
	if s.Name == "" || s.Section == nil || s.Section.Flags&elf.SHF_ALLOC == 0 || strings.HasPrefix(s.Name, ".L") {
		return false
	}
	switch s.Type {
	case elf.STT_FUNC, elf.STT_OBJECT, elf.STT_NOTYPE:
		return true
	}
	return false
}

// SectionClass names the output-section class a section of an object
// compiled with -ffunction-sections -fdata-sections goes to in a kernel
// built without them: ".text.foo" → ".text", ".text.unlikely.foo" →
// ".text.unlikely", ".bss.foo" → ".bss", ... Explicitly named kernel
// sections (".data..read_mostly", ".init.text", "__tracepoints") are their
// own class.
func SectionClass(name string) string {
	for _, c := range []string{".text.unlikely", ".text.hot", ".text.unknown", ".text", ".data", ".bss", ".rodata"} {
		if name == c {
			return c
		}
		rest, ok := strings.CutPrefix(name, c+".")
		if !ok || rest == "" || rest[0] == '.' {
			continue
		}
		if c == ".data" && (rest == "once" || rest == "unlikely") {
			return name
		}
		if c == ".text" && (rest == "unlikely" || rest == "hot" || rest == "unknown" || rest == "fixup") {
			continue
		}
		return c
	}
	return name
}
