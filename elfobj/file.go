package elfobj

import (
	"debug/elf"
	"fmt"
)

// File is an ELF64 little-endian relocatable object.
type File struct {
	OSABI      elf.OSABI
	ABIVersion uint8
	Machine    elf.Machine
	Entry      uint64 // e_entry; 0 in objects produced by compilers
	Flags      uint32 // e_flags

	// Sections in index order; Sections[i] has index i+1.
	Sections []*Section
	// Symbols in index order; Symbols[i] has index i+1. Encode puts locals
	// first.
	Symbols []*Symbol

	// Symtab is the SHT_SYMTAB section (nil when the file has none); its
	// contents are generated from Symbols, and Symtab.Link is the string
	// table the symbol names go to.
	Symtab *Section
	// Shstrtab is the section-name string table (e_shstrndx); nil means
	// the sections have no names.
	Shstrtab *Section
}

// Section is one section of a File. Which fields matter depends on Type:
// relocation sections use Relocs, groups use Group, SHT_NOBITS uses Size,
// generated sections (see the package documentation) ignore Data, and every
// other section's contents are Data.
type Section struct {
	Name      string
	Type      elf.SectionType
	Flags     elf.SectionFlag
	Addr      uint64
	Addralign uint64
	Entsize   uint64

	// Link is sh_link when it names a section: the symbol table of a
	// relocation section, group or SHT_SYMTAB_SHNDX, the string table of a
	// symbol table, the section an SHF_LINK_ORDER section follows.
	Link *Section
	// Info is sh_info when it names a section: the section a relocation
	// section applies to, or the SHF_INFO_LINK target.
	Info *Section
	// RawLink and RawInfo are sh_link and sh_info when they are plain
	// numbers rather than references; they are ignored where the model
	// derives the value (a symbol table's sh_info, a group's signature).
	RawLink uint32
	RawInfo uint32

	Data   []byte  // contents of sections stored as bytes
	Size   uint64  // size of SHT_NOBITS (and SHT_NULL) sections
	Relocs []Reloc // entries of SHT_RELA and SHT_REL sections
	Group  *Group  // members of SHT_GROUP sections

	// Index is the section header index as of the last Parse, Renumber or
	// Encode; 0 for a section not (or no longer) in a File.
	Index int
}

// Group is the contents of an SHT_GROUP section.
type Group struct {
	Flags     uint32  // GRP_COMDAT or 0
	Signature *Symbol // sh_info: the symbol naming the group
	Members   []*Section
}

// Symbol is one entry of the symbol table.
type Symbol struct {
	Name  string
	Bind  elf.SymBind
	Type  elf.SymType
	Other uint8 // st_other; the low two bits are the visibility

	// Section is the section the symbol is defined in. When it is nil,
	// Shndx holds a reserved index: SHN_UNDEF, SHN_ABS, SHN_COMMON,
	// SHNLivepatch, ...
	Section *Section
	Shndx   elf.SectionIndex

	Value uint64
	Size  uint64

	// Index is the symbol table index as of the last Parse, Renumber or
	// Encode; 0 for a symbol not (or no longer) in a File.
	Index int
}

// Reloc is one relocation entry. Symbol is nil for entries against symbol
// index 0. Addend is always 0 in SHT_REL sections.
type Reloc struct {
	Offset uint64
	Type   uint32
	Symbol *Symbol
	Addend int64
}

// Visibility returns the symbol's visibility (st_other & 3).
func (s *Symbol) Visibility() elf.SymVis { return elf.SymVis(s.Other & 3) }

// IsLocal reports whether the symbol has local binding.
func (s *Symbol) IsLocal() bool { return s.Bind == elf.STB_LOCAL }

// IsUndefined reports whether the symbol is undefined in this object.
func (s *Symbol) IsUndefined() bool { return s.Section == nil && s.Shndx == elf.SHN_UNDEF }

// String names the symbol for diagnostics; section symbols, which have no
// name of their own, are named after their section.
func (s *Symbol) String() string {
	if s == nil {
		return "<null symbol>"
	}
	if s.Name == "" && s.Type == elf.STT_SECTION && s.Section != nil {
		return "section symbol " + s.Section.Name
	}
	return s.Name
}

// String names the section for diagnostics.
func (s *Section) String() string {
	if s == nil {
		return "<no section>"
	}
	if s.Index > 0 {
		return fmt.Sprintf("%s [%d]", s.Name, s.Index)
	}
	return s.Name
}

// IsReloc reports whether the section is a relocation section.
func (s *Section) IsReloc() bool { return s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL }

// FileSize is the number of bytes the section occupies in the file as it
// is modelled now (0 for SHT_NOBITS); for generated sections it is the
// size Encode will give them, except string tables, which depend on the
// whole file.
func (s *Section) FileSize() uint64 {
	switch s.Type {
	case elf.SHT_NOBITS, elf.SHT_NULL:
		return 0
	case elf.SHT_RELA:
		return uint64(len(s.Relocs)) * relaSize
	case elf.SHT_REL:
		return uint64(len(s.Relocs)) * relSize
	case elf.SHT_GROUP:
		if s.Group == nil {
			return 4
		}
		return 4 + 4*uint64(len(s.Group.Members))
	}
	return uint64(len(s.Data))
}

// MemSize is the section's size as sh_size reports it: Size for SHT_NOBITS,
// FileSize otherwise.
func (s *Section) MemSize() uint64 {
	if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL {
		return s.Size
	}
	return s.FileSize()
}

// Section returns the first section called name, or nil.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Symbol returns the first symbol called name, or nil. Section symbols
// have empty names and are found with SectionSymbol.
func (f *File) Symbol(name string) *Symbol {
	for _, s := range f.Symbols {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// RelocSections returns the relocation sections that apply to target, in
// section order.
func (f *File) RelocSections(target *Section) []*Section {
	var out []*Section
	for _, s := range f.Sections {
		if s.IsReloc() && s.Info == target {
			out = append(out, s)
		}
	}
	return out
}

// Arch returns the machine table for the file, or nil when the machine has
// none.
func (f *File) Arch() *Arch { return ArchFor(f.Machine) }

// On-disk sizes of ELF64 structures.
const (
	ehdrSize = 64
	shdrSize = 64
	symSize  = 24
	relaSize = 24
	relSize  = 16
)
