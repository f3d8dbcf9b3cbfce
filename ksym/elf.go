package ksym

import (
	"debug/elf"
	"sort"

	"github.com/kelp-project/kelp/elfobj"
)

// ModuleTable returns the symbols of a module file (.ko) in the order the
// kernel keeps them once the module is loaded: the symbol table order,
// keeping only the symbols the loader copies into the module's core
// kallsyms (defined in an allocated section that is not an init section,
// and named). Locals carry the name of the STT_FILE entry before them.
func ModuleTable(f *elfobj.File, name string) *Table {
	t := &Table{Object: name, Files: true}
	file := ""
	for _, s := range f.Symbols {
		if s.Type == elf.STT_FILE {
			file = s.Name
			continue
		}
		if s.Name == "" || s.Section == nil || s.Section.Flags&elf.SHF_ALLOC == 0 || !moduleKeeps(s.Section.Name) {
			continue
		}
		sym := Symbol{Addr: s.Value, Type: typeLetter(s), Name: s.Name}
		if s.IsLocal() {
			sym.File = file
		}
		t.Syms = append(t.Syms, sym)
	}
	return t
}

// VmlinuxTable returns the symbols of a vmlinux with a symbol table (the
// debug image) in address order, the order kallsyms counts them in, with
// the source file of each local.
func VmlinuxTable(f *elfobj.File) *Table {
	t := &Table{Object: Vmlinux, Files: true}
	file := ""
	for _, s := range f.Symbols {
		if s.Type == elf.STT_FILE {
			file = s.Name
			continue
		}
		if s.Name == "" || s.Type == elf.STT_SECTION || s.Section == nil || s.Section.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		sym := Symbol{Addr: s.Value, Type: typeLetter(s), Name: s.Name}
		if s.IsLocal() {
			sym.File = file
		}
		t.Syms = append(t.Syms, sym)
	}
	sort.SliceStable(t.Syms, func(i, j int) bool { return t.Syms[i].Addr < t.Syms[j].Addr })
	return t
}

// typeLetter approximates nm's letter for an ELF symbol.
func typeLetter(s *elfobj.Symbol) byte {
	c := byte('d')
	switch sec := s.Section; {
	case sec.Flags&elf.SHF_EXECINSTR != 0:
		c = 't'
	case sec.Type == elf.SHT_NOBITS:
		c = 'b'
	case sec.Flags&elf.SHF_WRITE == 0:
		c = 'r'
	}
	if s.Bind == elf.STB_WEAK {
		// nm and kallsyms: W for weak code, V for weak objects.
		if s.Type == elf.STT_OBJECT {
			return 'V'
		}
		return 'W'
	}
	if !s.IsLocal() {
		c -= 'a' - 'A'
	}
	return c
}
