package elfobj

import (
	"debug/elf"
	"fmt"
	"slices"
	"strings"
)

// New returns an empty object for machine m with a symbol table, its
// string table and a section name table, laid out as GNU as does
// (.symtab, .strtab, .shstrtab); sections added with AddSection go after
// them, InsertSectionAfter places them anywhere.
func New(m elf.Machine) *File {
	strtab := &Section{Name: ".strtab", Type: elf.SHT_STRTAB, Addralign: 1}
	symtab := &Section{Name: ".symtab", Type: elf.SHT_SYMTAB, Addralign: 8, Entsize: symSize, Link: strtab}
	shstrtab := &Section{Name: ".shstrtab", Type: elf.SHT_STRTAB, Addralign: 1}
	f := &File{Machine: m, Sections: []*Section{symtab, strtab, shstrtab}, Symtab: symtab, Shstrtab: shstrtab}
	f.Renumber()
	return f
}

// Renumber puts local symbols before the others (keeping the order within
// each group) and sets every Section.Index and Symbol.Index to the position
// Encode will give it. Encode calls it; call it directly to read indices
// after editing.
func (f *File) Renumber() {
	for i, s := range f.Sections {
		if s != nil {
			s.Index = i + 1
		}
	}
	if !localsFirst(f.Symbols) {
		locals := make([]*Symbol, 0, len(f.Symbols))
		var others []*Symbol
		for _, s := range f.Symbols {
			if s != nil && s.IsLocal() {
				locals = append(locals, s)
			} else {
				others = append(others, s)
			}
		}
		f.Symbols = append(locals, others...)
	}
	for i, s := range f.Symbols {
		if s != nil {
			s.Index = i + 1
		}
	}
}

func localsFirst(syms []*Symbol) bool {
	global := false
	for _, s := range syms {
		if s == nil {
			continue
		}
		if !s.IsLocal() {
			global = true
		} else if global {
			return false
		}
	}
	return true
}

// has reports whether s is one of f's sections; valid after Renumber.
func (f *File) has(s *Section) bool {
	return s != nil && s.Index > 0 && s.Index <= len(f.Sections) && f.Sections[s.Index-1] == s
}

// hasSym reports whether s is one of f's symbols; valid after Renumber.
func (f *File) hasSym(s *Symbol) bool {
	return s != nil && s.Index > 0 && s.Index <= len(f.Symbols) && f.Symbols[s.Index-1] == s
}

// Validate renumbers the model and checks that it can be written: every
// reference points to a section or symbol of this file, relocations stay
// inside their sections, names have no NUL bytes, special section indices
// are reserved values. The error names the offending section, symbol or
// relocation.
func (f *File) Validate() error {
	f.Renumber()
	if f.Symtab != nil && !f.has(f.Symtab) {
		return fmt.Errorf("elfobj: symbol table %s is not in the file", f.Symtab.Name)
	}
	if f.Shstrtab != nil {
		if !f.has(f.Shstrtab) {
			return fmt.Errorf("elfobj: section name table %s is not in the file", f.Shstrtab.Name)
		}
		if f.Shstrtab.Type != elf.SHT_STRTAB {
			return fmt.Errorf("elfobj: section name table %s has type %v", f.Shstrtab, f.Shstrtab.Type)
		}
	}
	for i, s := range f.Sections {
		if s == nil {
			return fmt.Errorf("elfobj: section %d is nil", i+1)
		}
		if err := f.validateSection(s); err != nil {
			return fmt.Errorf("elfobj: section %s: %w", s, err)
		}
	}
	if len(f.Symbols) > 0 && f.Symtab == nil {
		return fmt.Errorf("elfobj: %d symbols but no symbol table", len(f.Symbols))
	}
	named := f.Symtab != nil && f.Symtab.Link != nil && f.Symtab.Link.Type == elf.SHT_STRTAB
	for i, s := range f.Symbols {
		if s == nil {
			return fmt.Errorf("elfobj: symbol %d is nil", i+1)
		}
		if err := f.validateSymbol(s, named); err != nil {
			return fmt.Errorf("elfobj: symbol %d (%s): %w", s.Index, s, err)
		}
	}
	return nil
}

func (f *File) validateSection(s *Section) error {
	if f.Shstrtab == nil && s.Name != "" {
		return fmt.Errorf("named but the file has no section name table")
	}
	if strings.IndexByte(s.Name, 0) >= 0 {
		return fmt.Errorf("name contains a NUL byte")
	}
	if s.Link != nil && !f.has(s.Link) && linkIsSection(s.Type, s.Flags) {
		return fmt.Errorf("sh_link names section %s, which is not in the file", s.Link.Name)
	}
	if s.Info != nil && !f.has(s.Info) && infoIsSection(s.Type, s.Flags) {
		return fmt.Errorf("sh_info names section %s, which is not in the file", s.Info.Name)
	}
	switch s.Type {
	case elf.SHT_SYMTAB:
		if s != f.Symtab {
			return fmt.Errorf("second symbol table (File.Symtab is %s)", f.Symtab)
		}
	case elf.SHT_SYMTAB_SHNDX:
		if f.Symtab == nil || s.Link != f.Symtab {
			return fmt.Errorf("extended index table not linked to the symbol table")
		}
	case elf.SHT_RELA, elf.SHT_REL:
		return f.validateRelocs(s)
	case elf.SHT_GROUP:
		if s.Group == nil {
			return fmt.Errorf("group without Group")
		}
		if f.Symtab == nil || s.Link != f.Symtab {
			return fmt.Errorf("group not linked to the symbol table")
		}
		if g := s.Group.Signature; g != nil && !f.hasSym(g) {
			return fmt.Errorf("group signature %s is not in the file", g)
		}
		for _, m := range s.Group.Members {
			if !f.has(m) {
				return fmt.Errorf("group member %s is not in the file", m.Name)
			}
		}
	}
	return nil
}

func (f *File) validateRelocs(s *Section) error {
	if len(s.Relocs) == 0 {
		return nil
	}
	if f.Symtab == nil || s.Link != f.Symtab {
		return fmt.Errorf("relocations not linked to the symbol table")
	}
	if s.Type == elf.SHT_REL {
		for j := range s.Relocs {
			if s.Relocs[j].Addend != 0 {
				return fmt.Errorf("relocation %d at %#x: addend %d in an SHT_REL section", j, s.Relocs[j].Offset, s.Relocs[j].Addend)
			}
		}
	}
	arch := f.Arch()
	target := s.Info
	check := arch != nil && target != nil && !f.generated(target)
	var size uint64
	if check {
		size = target.MemSize()
	}
	for j := range s.Relocs {
		r := &s.Relocs[j]
		if r.Symbol != nil && !f.hasSym(r.Symbol) {
			return fmt.Errorf("relocation %d at %#x: symbol %s is not in the file", j, r.Offset, r.Symbol)
		}
		if !check {
			continue
		}
		if rt, ok := arch.Reloc(r.Type); ok && rt.Size > 0 {
			if r.Offset > size || size-r.Offset < uint64(rt.Size) {
				return fmt.Errorf("relocation %d: %s at %#x overruns %s (%#x bytes)", j, rt.Name, r.Offset, target.Name, size)
			}
		}
	}
	return nil
}

func (f *File) validateSymbol(s *Symbol, named bool) error {
	if s.Name != "" && !named {
		return fmt.Errorf("named but the symbol table has no string table")
	}
	if strings.IndexByte(s.Name, 0) >= 0 {
		return fmt.Errorf("name contains a NUL byte")
	}
	if s.Bind > 0xf || s.Type > 0xf {
		return fmt.Errorf("binding %d or type %d does not fit st_info", s.Bind, s.Type)
	}
	if s.Section != nil {
		if !f.has(s.Section) {
			return fmt.Errorf("defined in section %s, which is not in the file", s.Section.Name)
		}
		return nil
	}
	if s.Shndx != elf.SHN_UNDEF && (s.Shndx < elf.SHN_LORESERVE || s.Shndx >= elf.SHN_XINDEX) {
		return fmt.Errorf("no section and st_shndx %#x is not a reserved index", uint32(s.Shndx))
	}
	return nil
}

// AddSection appends s to the section list and returns it.
func (f *File) AddSection(s *Section) *Section {
	f.Sections = append(f.Sections, s)
	s.Index = len(f.Sections)
	return s
}

// InsertSectionAfter inserts s right after prev (at the front when prev is
// nil or not in the file) and returns s. Indices of later sections shift;
// nothing refers to them by index, so nothing else changes.
func (f *File) InsertSectionAfter(prev, s *Section) *Section {
	at := 0
	if i := slices.Index(f.Sections, prev); prev != nil && i >= 0 {
		at = i + 1
	}
	f.Sections = slices.Insert(f.Sections, at, s)
	f.Renumber()
	return s
}

// AddRelocSection creates the SHT_RELA section for target (named
// ".rela"+target.Name, as GNU as names them), places it after target and
// returns it. The flags are SHF_INFO_LINK; a livepatch relocation section
// adds SHF_ALLOC and SHFRelaLivepatch.
func (f *File) AddRelocSection(target *Section) *Section {
	return f.InsertSectionAfter(target, &Section{
		Name:      ".rela" + target.Name,
		Type:      elf.SHT_RELA,
		Flags:     elf.SHF_INFO_LINK,
		Link:      f.Symtab,
		Info:      target,
		Addralign: 8,
		Entsize:   relaSize,
	})
}

// RemoveSection removes s together with what cannot exist without it: the
// relocation sections that apply to s, SHF_LINK_ORDER sections that
// follow it (and their relocations), the symbols defined in any of these,
// and their membership in groups (a group left empty is removed too). References to
// the removed symbols from elsewhere — relocations in other sections — are
// left for the caller to decide on (RemoveRelocs); Validate and Encode
// report any that remain.
func (f *File) RemoveSection(s *Section) {
	gone := map[*Section]bool{s: true}
	// Dependents can have dependents (the relocations of a link-order
	// section): repeat until nothing new goes.
	for more := true; more; {
		more = false
		for _, o := range f.Sections {
			if gone[o] {
				continue
			}
			if (o.IsReloc() && gone[o.Info]) || (o.Flags&elf.SHF_LINK_ORDER != 0 && gone[o.Link]) {
				gone[o] = true
				more = true
			}
		}
	}
	for _, o := range f.Sections {
		if o.Type != elf.SHT_GROUP || o.Group == nil || gone[o] {
			continue
		}
		members := o.Group.Members[:0]
		for _, m := range o.Group.Members {
			if !gone[m] {
				members = append(members, m)
			}
		}
		o.Group.Members = members
		if len(members) == 0 {
			gone[o] = true
		}
	}
	f.Sections = slices.DeleteFunc(f.Sections, func(o *Section) bool {
		if gone[o] {
			o.Index = 0
			return true
		}
		return false
	})
	f.Symbols = slices.DeleteFunc(f.Symbols, func(sym *Symbol) bool {
		if sym.Section != nil && gone[sym.Section] {
			sym.Index = 0
			return true
		}
		return false
	})
	f.Renumber()
}

// RenameSection renames s and the relocation sections that apply to it
// (".rela"+old becomes ".rela"+name; other names are left alone).
func (f *File) RenameSection(s *Section, name string) {
	old := s.Name
	for _, o := range f.Sections {
		if !o.IsReloc() || o.Info != s {
			continue
		}
		for _, prefix := range []string{".rela", ".rel"} {
			if o.Name == prefix+old {
				o.Name = prefix + name
				break
			}
		}
	}
	s.Name = name
}

// AddSymbol adds sym after the last local symbol when it is local, at the
// end otherwise, and returns it.
func (f *File) AddSymbol(sym *Symbol) *Symbol {
	if !sym.IsLocal() {
		f.Symbols = append(f.Symbols, sym)
		sym.Index = len(f.Symbols)
		return sym
	}
	at := len(f.Symbols)
	for i, s := range f.Symbols {
		if !s.IsLocal() {
			at = i
			break
		}
	}
	f.Symbols = slices.Insert(f.Symbols, at, sym)
	f.Renumber()
	return sym
}

// RemoveSymbol removes sym. Relocations and groups that still refer to it
// are reported by Validate and Encode.
func (f *File) RemoveSymbol(sym *Symbol) {
	if i := slices.Index(f.Symbols, sym); i >= 0 {
		f.Symbols = slices.Delete(f.Symbols, i, i+1)
		sym.Index = 0
		f.Renumber()
	}
}

// SectionSymbol returns the STT_SECTION symbol of s, adding one when the
// file has none.
func (f *File) SectionSymbol(s *Section) *Symbol {
	for _, sym := range f.Symbols {
		if sym.Type == elf.STT_SECTION && sym.Section == s {
			return sym
		}
	}
	return f.AddSymbol(&Symbol{Bind: elf.STB_LOCAL, Type: elf.STT_SECTION, Section: s})
}

// RemoveRelocs deletes, from every relocation section, the entries for
// which drop returns true, and returns how many it deleted.
func (f *File) RemoveRelocs(drop func(sec *Section, r *Reloc) bool) int {
	n := 0
	for _, s := range f.Sections {
		if !s.IsReloc() {
			continue
		}
		before := len(s.Relocs)
		s.Relocs = slices.DeleteFunc(s.Relocs, func(r Reloc) bool { return drop(s, &r) })
		n += before - len(s.Relocs)
	}
	return n
}
