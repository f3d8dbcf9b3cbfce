package elfobj

import (
	"debug/elf"
	"fmt"
)

// RelocType describes one relocation type of a machine.
type RelocType struct {
	Name  string
	Size  int  // bytes the relocation patches at r_offset (0: none)
	PCRel bool // the value is relative to the place being patched
}

// Arch is what elfobj knows about one machine: its relocation types. It is
// a table so that another machine is a new entry, not new code.
type Arch struct {
	Machine elf.Machine
	Name    string
	relocs  []RelocType // indexed by type number; Name "" means unknown
}

// Reloc returns the description of relocation type t.
func (a *Arch) Reloc(t uint32) (RelocType, bool) {
	if a == nil || uint64(t) >= uint64(len(a.relocs)) || a.relocs[t].Name == "" {
		return RelocType{}, false
	}
	return a.relocs[t], true
}

// RelocName returns the name of relocation type t, or a number for a type
// the table does not know.
func (a *Arch) RelocName(t uint32) string {
	if r, ok := a.Reloc(t); ok {
		return r.Name
	}
	return fmt.Sprintf("reloc type %d", t)
}

// ArchFor returns the table for machine m, or nil.
func ArchFor(m elf.Machine) *Arch {
	if m == elf.EM_X86_64 {
		return &archX86_64
	}
	return nil
}

var archX86_64 = Arch{
	Machine: elf.EM_X86_64,
	Name:    "x86-64",
	relocs:  x86_64Relocs(),
}

// x86_64Relocs follows the x86-64 psABI, table "Relocation Types".
func x86_64Relocs() []RelocType {
	type r = elf.R_X86_64
	t := make([]RelocType, elf.R_X86_64_REX_GOTPCRELX+1)
	set := func(typ r, size int, pcrel bool) {
		t[typ] = RelocType{Name: typ.String(), Size: size, PCRel: pcrel}
	}
	set(elf.R_X86_64_NONE, 0, false)
	set(elf.R_X86_64_64, 8, false)
	set(elf.R_X86_64_PC32, 4, true)
	set(elf.R_X86_64_GOT32, 4, false)
	set(elf.R_X86_64_PLT32, 4, true)
	set(elf.R_X86_64_COPY, 0, false)
	set(elf.R_X86_64_GLOB_DAT, 8, false)
	set(elf.R_X86_64_JMP_SLOT, 8, false)
	set(elf.R_X86_64_RELATIVE, 8, false)
	set(elf.R_X86_64_GOTPCREL, 4, true)
	set(elf.R_X86_64_32, 4, false)
	set(elf.R_X86_64_32S, 4, false)
	set(elf.R_X86_64_16, 2, false)
	set(elf.R_X86_64_PC16, 2, true)
	set(elf.R_X86_64_8, 1, false)
	set(elf.R_X86_64_PC8, 1, true)
	set(elf.R_X86_64_DTPMOD64, 8, false)
	set(elf.R_X86_64_DTPOFF64, 8, false)
	set(elf.R_X86_64_TPOFF64, 8, false)
	set(elf.R_X86_64_TLSGD, 4, true)
	set(elf.R_X86_64_TLSLD, 4, true)
	set(elf.R_X86_64_DTPOFF32, 4, false)
	set(elf.R_X86_64_GOTTPOFF, 4, true)
	set(elf.R_X86_64_TPOFF32, 4, false)
	set(elf.R_X86_64_PC64, 8, true)
	set(elf.R_X86_64_GOTOFF64, 8, false)
	set(elf.R_X86_64_GOTPC32, 4, true)
	set(elf.R_X86_64_GOT64, 8, false)
	set(elf.R_X86_64_GOTPCREL64, 8, true)
	set(elf.R_X86_64_GOTPC64, 8, true)
	set(elf.R_X86_64_GOTPLT64, 8, false)
	set(elf.R_X86_64_PLTOFF64, 8, false)
	set(elf.R_X86_64_SIZE32, 4, false)
	set(elf.R_X86_64_SIZE64, 8, false)
	set(elf.R_X86_64_GOTPC32_TLSDESC, 4, true)
	set(elf.R_X86_64_TLSDESC_CALL, 0, false)
	set(elf.R_X86_64_TLSDESC, 16, false)
	set(elf.R_X86_64_IRELATIVE, 8, false)
	set(elf.R_X86_64_RELATIVE64, 8, false)
	set(elf.R_X86_64_PC32_BND, 4, true)
	set(elf.R_X86_64_PLT32_BND, 4, true)
	set(elf.R_X86_64_GOTPCRELX, 4, true)
	set(elf.R_X86_64_REX_GOTPCRELX, 4, true)
	return t
}
