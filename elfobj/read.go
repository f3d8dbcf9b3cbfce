package elfobj

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// FormatError reports malformed input: what is wrong, where in the file,
// and in which section.
type FormatError struct {
	Off     int64  // file offset of the offending structure, -1 when none
	Section string // the section involved ("name [index]"), "" when none
	Msg     string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("elfobj: ")
	if e.Section != "" {
		b.WriteString("section ")
		b.WriteString(e.Section)
		b.WriteString(": ")
	}
	if e.Off >= 0 {
		fmt.Fprintf(&b, "offset %#x: ", e.Off)
	}
	b.WriteString(e.Msg)
	return b.String()
}

var le = binary.LittleEndian

// ReadFile reads and parses the object at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes an ELF64 little-endian relocatable object. Section
// contents alias data (see the package documentation).
func Parse(data []byte) (*File, error) {
	p := &parser{data: data, f: &File{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.f, nil
}

type rawShdr struct {
	name, typ   uint32
	flags, addr uint64
	off, size   uint64
	link, info  uint32
	align, ent  uint64
}

type parser struct {
	data []byte
	f    *File
	hdrs []rawShdr // all section headers, index 0 included
	secs []Section // backing store; secs[0] is unused
	syms []*Symbol // symbol table by index; syms[0] is nil
	arch *Arch
}

func (p *parser) errf(off int64, sec int, format string, args ...any) error {
	e := &FormatError{Off: off, Msg: fmt.Sprintf(format, args...)}
	if sec > 0 {
		name := ""
		if sec < len(p.secs) {
			name = p.secs[sec].Name
		}
		e.Section = fmt.Sprintf("%s [%d]", name, sec)
	}
	return e
}

func (p *parser) parse() error {
	if err := p.header(); err != nil {
		return err
	}
	if len(p.hdrs) == 0 {
		return nil
	}
	if err := p.sections(); err != nil {
		return err
	}
	if err := p.symbols(); err != nil {
		return err
	}
	for i := 1; i < len(p.secs); i++ {
		s := &p.secs[i]
		var err error
		switch {
		case s.IsReloc():
			err = p.relocs(i)
		case s.Type == elf.SHT_GROUP:
			err = p.group(i)
		}
		if err != nil {
			return err
		}
	}
	// Drop the bytes of generated sections: the model is their truth.
	f := p.f
	for _, s := range f.Sections {
		if f.generated(s) {
			s.Data = nil
		}
	}
	return nil
}

// header decodes the ELF header and the section header table.
func (p *parser) header() error {
	d := p.data
	if len(d) < ehdrSize {
		return p.errf(0, 0, "file too short for an ELF header (%d bytes)", len(d))
	}
	if string(d[:4]) != elf.ELFMAG {
		return p.errf(0, 0, "not an ELF file")
	}
	if c := elf.Class(d[elf.EI_CLASS]); c != elf.ELFCLASS64 {
		return p.errf(elf.EI_CLASS, 0, "unsupported class %v (want ELFCLASS64)", c)
	}
	if e := elf.Data(d[elf.EI_DATA]); e != elf.ELFDATA2LSB {
		return p.errf(elf.EI_DATA, 0, "unsupported byte order %v (want ELFDATA2LSB)", e)
	}
	if v := elf.Version(d[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return p.errf(elf.EI_VERSION, 0, "unsupported ident version %d", v)
	}
	f := p.f
	f.OSABI = elf.OSABI(d[elf.EI_OSABI])
	f.ABIVersion = d[elf.EI_ABIVERSION]
	if t := elf.Type(le.Uint16(d[16:])); t != elf.ET_REL {
		return p.errf(16, 0, "not a relocatable object (type %v)", t)
	}
	f.Machine = elf.Machine(le.Uint16(d[18:]))
	p.arch = ArchFor(f.Machine)
	if v := le.Uint32(d[20:]); v != uint32(elf.EV_CURRENT) {
		return p.errf(20, 0, "unsupported version %d", v)
	}
	f.Entry = le.Uint64(d[24:])
	shoff := le.Uint64(d[40:])
	f.Flags = le.Uint32(d[48:])
	if phnum := le.Uint16(d[56:]); phnum != 0 {
		return p.errf(56, 0, "%d program headers in a relocatable object (unsupported)", phnum)
	}
	shentsize := le.Uint16(d[58:])
	shnum := uint64(le.Uint16(d[60:]))
	shstrndx := uint32(le.Uint16(d[62:]))
	if shoff == 0 {
		if shnum != 0 || shstrndx != 0 {
			return p.errf(40, 0, "%d section headers but no section header table", shnum)
		}
		return nil
	}
	if shentsize != shdrSize {
		return p.errf(58, 0, "section header size %d (want %d)", shentsize, shdrSize)
	}
	if shoff > uint64(len(d)) || uint64(len(d))-shoff < shdrSize {
		return p.errf(40, 0, "section header table at %#x outside the file (%d bytes)", shoff, len(d))
	}
	null := p.rawShdr(shoff)
	n := shnum
	if n == 0 {
		// Extended numbering: the count lives in section 0's sh_size.
		n = null.size
		if n == 0 {
			return p.errf(int64(shoff), 0, "section header table present but section count is 0")
		}
	}
	if n > (uint64(len(d))-shoff)/shdrSize {
		return p.errf(int64(shoff), 0, "%d section headers at %#x overrun the file (%d bytes)", n, shoff, len(d))
	}
	if shstrndx == uint32(elf.SHN_XINDEX) {
		shstrndx = null.link
	} else if shstrndx >= uint32(elf.SHN_LORESERVE) {
		return p.errf(62, 0, "reserved section name table index %#x", shstrndx)
	}
	if uint64(shstrndx) >= n {
		return p.errf(62, 0, "section name table index %d out of range (%d sections)", shstrndx, n)
	}
	want := rawShdr{}
	if shnum == 0 {
		want.size = n
	}
	if le.Uint16(d[62:]) == uint16(elf.SHN_XINDEX) {
		want.link = shstrndx
	}
	if null != want {
		return p.errf(int64(shoff), 0, "section header 0 is not null")
	}
	p.hdrs = make([]rawShdr, n)
	for i := uint64(1); i < n; i++ {
		p.hdrs[i] = p.rawShdr(shoff + i*shdrSize)
	}
	p.hdrs[0].link = shstrndx // remembered for sections()
	return nil
}

func (p *parser) rawShdr(off uint64) rawShdr {
	b := p.data[off : off+shdrSize]
	return rawShdr{
		name:  le.Uint32(b[0:]),
		typ:   le.Uint32(b[4:]),
		flags: le.Uint64(b[8:]),
		addr:  le.Uint64(b[16:]),
		off:   le.Uint64(b[24:]),
		size:  le.Uint64(b[32:]),
		link:  le.Uint32(b[40:]),
		info:  le.Uint32(b[44:]),
		align: le.Uint64(b[48:]),
		ent:   le.Uint64(b[56:]),
	}
}

func (p *parser) shdrOff(i int) int64 {
	return int64(le.Uint64(p.data[40:])) + int64(i)*shdrSize
}

// sections builds the Section list: names, header fields, contents and
// section-valued links.
func (p *parser) sections() error {
	n := len(p.hdrs)
	p.secs = make([]Section, n)
	f := p.f
	f.Sections = make([]*Section, n-1)
	for i := 1; i < n; i++ {
		h := &p.hdrs[i]
		s := &p.secs[i]
		s.Index = i
		s.Type = elf.SectionType(h.typ)
		s.Flags = elf.SectionFlag(h.flags)
		s.Addr = h.addr
		s.Addralign = h.align
		s.Entsize = h.ent
		f.Sections[i-1] = s
	}
	// Names first, so that later errors can use them.
	if shstrndx := int(p.hdrs[0].link); shstrndx != 0 {
		tab := &p.secs[shstrndx]
		if tab.Type != elf.SHT_STRTAB {
			return p.errf(62, shstrndx, "section name table has type %v (want SHT_STRTAB)", tab.Type)
		}
		if err := p.contents(shstrndx); err != nil {
			return err
		}
		f.Shstrtab = tab
		strs := string(tab.Data)
		for i := 1; i < n; i++ {
			name, ok := lookupString(strs, p.hdrs[i].name)
			if !ok {
				return p.errf(p.shdrOff(i), i, "name offset %#x outside the section name table (%d bytes) or unterminated", p.hdrs[i].name, len(strs))
			}
			p.secs[i].Name = name
		}
	}
	for i := 1; i < n; i++ {
		if err := p.contents(i); err != nil {
			return err
		}
	}
	// References between sections.
	for i := 1; i < n; i++ {
		h := &p.hdrs[i]
		s := &p.secs[i]
		if linkIsSection(s.Type, s.Flags) {
			if h.link != 0 {
				if uint64(h.link) >= uint64(n) {
					return p.errf(p.shdrOff(i)+40, i, "sh_link %d out of range (%d sections)", h.link, n)
				}
				s.Link = &p.secs[h.link]
			}
		} else {
			s.RawLink = h.link
		}
		switch {
		case infoIsSection(s.Type, s.Flags):
			if h.info != 0 {
				if uint64(h.info) >= uint64(n) {
					return p.errf(p.shdrOff(i)+44, i, "sh_info %d out of range (%d sections)", h.info, n)
				}
				s.Info = &p.secs[h.info]
			}
		case s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_GROUP:
			// Derived from the symbols, or a symbol index (group()).
		default:
			s.RawInfo = h.info
		}
		switch s.Type {
		case elf.SHT_SYMTAB:
			if f.Symtab != nil {
				return p.errf(p.shdrOff(i), i, "second symbol table (first is %s)", f.Symtab)
			}
			if h.ent != symSize {
				return p.errf(p.shdrOff(i)+56, i, "symbol table entry size %d (want %d)", h.ent, symSize)
			}
			f.Symtab = s
		case elf.SHT_SYMTAB_SHNDX, elf.SHT_GROUP:
			if h.ent != 4 {
				return p.errf(p.shdrOff(i)+56, i, "%v entry size %d (want 4)", s.Type, h.ent)
			}
		case elf.SHT_RELA:
			if h.ent != relaSize {
				return p.errf(p.shdrOff(i)+56, i, "relocation entry size %d (want %d)", h.ent, relaSize)
			}
		case elf.SHT_REL:
			if h.ent != relSize {
				return p.errf(p.shdrOff(i)+56, i, "relocation entry size %d (want %d)", h.ent, relSize)
			}
		}
	}
	return nil
}

// contents sets the contents of section i from its header.
func (p *parser) contents(i int) error {
	h := &p.hdrs[i]
	s := &p.secs[i]
	if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL {
		s.Size = h.size
		return nil
	}
	if h.off > uint64(len(p.data)) || h.size > uint64(len(p.data))-h.off {
		return p.errf(p.shdrOff(i)+24, i, "contents [%#x, +%#x) outside the file (%d bytes)", h.off, h.size, len(p.data))
	}
	s.Data = p.data[h.off : h.off+h.size : h.off+h.size]
	return nil
}

// lookupString returns the NUL-terminated string at off in tab.
func lookupString(tab string, off uint32) (string, bool) {
	if uint64(off) >= uint64(len(tab)) {
		return "", off == 0 && len(tab) == 0
	}
	end := strings.IndexByte(tab[off:], 0)
	if end < 0 {
		return "", false
	}
	return tab[off : int(off)+end], true
}

// linkIsSection reports whether sh_link of a section of this type and
// flags is a section index.
func linkIsSection(t elf.SectionType, fl elf.SectionFlag) bool {
	switch t {
	case elf.SHT_SYMTAB, elf.SHT_DYNSYM, elf.SHT_REL, elf.SHT_RELA, elf.SHT_GROUP,
		elf.SHT_SYMTAB_SHNDX, elf.SHT_HASH, elf.SHT_DYNAMIC, elf.SHT_GNU_HASH,
		elf.SHT_GNU_VERSYM, elf.SHT_GNU_VERDEF, elf.SHT_GNU_VERNEED:
		return true
	}
	return fl&elf.SHF_LINK_ORDER != 0
}

// infoIsSection reports whether sh_info of a section of this type and
// flags is a section index.
func infoIsSection(t elf.SectionType, fl elf.SectionFlag) bool {
	if t == elf.SHT_SYMTAB || t == elf.SHT_GROUP {
		return false
	}
	return t == elf.SHT_REL || t == elf.SHT_RELA || fl&elf.SHF_INFO_LINK != 0
}

// symbols decodes the symbol table, with extended section indices from
// its SHT_SYMTAB_SHNDX section.
func (p *parser) symbols() error {
	f := p.f
	st := f.Symtab
	var shndx *Section
	for i := 1; i < len(p.secs); i++ {
		s := &p.secs[i]
		if s.Type != elf.SHT_SYMTAB_SHNDX {
			continue
		}
		if st == nil || s.Link != st {
			return p.errf(p.shdrOff(i)+40, i, "extended index table not linked to the symbol table")
		}
		if shndx != nil {
			return p.errf(p.shdrOff(i), i, "second extended index table (first is %s)", shndx)
		}
		shndx = s
	}
	if st == nil {
		p.syms = []*Symbol{nil}
		return nil
	}
	raw := st.Data
	sti := st.Index
	symOff := int64(p.hdrs[sti].off)
	if len(raw)%symSize != 0 {
		return p.errf(p.shdrOff(sti)+32, sti, "symbol table size %d not a multiple of %d", len(raw), symSize)
	}
	n := len(raw) / symSize
	if shndx != nil && len(shndx.Data) != 4*n {
		return p.errf(p.shdrOff(shndx.Index)+32, shndx.Index, "extended index table has %d bytes for %d symbols", len(shndx.Data), n)
	}
	var strs string
	if n > 1 {
		tab := st.Link
		if tab == nil || tab.Type != elf.SHT_STRTAB {
			return p.errf(p.shdrOff(sti)+40, sti, "symbol table's sh_link is not a string table")
		}
		strs = string(tab.Data)
	}
	if n > 0 {
		for _, b := range raw[:symSize] {
			if b != 0 {
				return p.errf(symOff, sti, "symbol 0 is not null")
			}
		}
	}
	p.syms = make([]*Symbol, max(n, 1))
	if n <= 1 {
		return nil
	}
	store := make([]Symbol, n-1)
	f.Symbols = make([]*Symbol, n-1)
	nsec := uint32(len(p.secs))
	for i := 1; i < n; i++ {
		e := raw[i*symSize : (i+1)*symSize]
		s := &store[i-1]
		off := symOff + int64(i)*symSize
		name, ok := lookupString(strs, le.Uint32(e[0:]))
		if !ok {
			return p.errf(off, sti, "symbol %d: name offset %#x outside the string table (%d bytes) or unterminated", i, le.Uint32(e[0:]), len(strs))
		}
		s.Name = name
		s.Bind = elf.ST_BIND(e[4])
		s.Type = elf.ST_TYPE(e[4])
		s.Other = e[5]
		s.Value = le.Uint64(e[8:])
		s.Size = le.Uint64(e[16:])
		s.Index = i
		idx := uint32(le.Uint16(e[6:]))
		if idx == uint32(elf.SHN_XINDEX) {
			if shndx == nil {
				return p.errf(off, sti, "symbol %d (%s): SHN_XINDEX without an extended index table", i, name)
			}
			idx = le.Uint32(shndx.Data[4*i:])
			if idx == 0 || idx >= nsec {
				return p.errf(int64(p.hdrs[shndx.Index].off)+4*int64(i), shndx.Index, "symbol %d (%s): extended section index %d out of range (%d sections)", i, name, idx, nsec)
			}
			s.Section = &p.secs[idx]
		} else if idx == 0 || idx >= uint32(elf.SHN_LORESERVE) {
			s.Shndx = elf.SectionIndex(idx)
		} else {
			if idx >= nsec {
				return p.errf(off, sti, "symbol %d (%s): section index %d out of range (%d sections)", i, name, idx, nsec)
			}
			s.Section = &p.secs[idx]
		}
		f.Symbols[i-1] = s
		p.syms[i] = s
	}
	return nil
}

// relocs decodes relocation section i.
func (p *parser) relocs(i int) error {
	s := &p.secs[i]
	h := &p.hdrs[i]
	rela := s.Type == elf.SHT_RELA
	ent := relSize
	if rela {
		ent = relaSize
	}
	raw := s.Data
	if len(raw)%ent != 0 {
		return p.errf(p.shdrOff(i)+32, i, "size %d not a multiple of the entry size %d", len(raw), ent)
	}
	n := len(raw) / ent
	if n == 0 {
		return nil
	}
	if s.Link == nil || s.Link != p.f.Symtab {
		return p.errf(p.shdrOff(i)+40, i, "sh_link %d is not the symbol table", h.link)
	}
	var tsize uint64
	var tsec *Section
	if s.Info != nil {
		tsec = s.Info
		tsize = p.hdrs[tsec.Index].size
	}
	// Range checks need the machine's relocation sizes; generated
	// targets get new sizes on write, so there is nothing to hold them to.
	check := tsec != nil && p.arch != nil && !p.f.generated(tsec)
	nsym := uint64(len(p.syms))
	rs := make([]Reloc, n)
	for j := range rs {
		e := raw[j*ent : (j+1)*ent]
		r := &rs[j]
		r.Offset = le.Uint64(e[0:])
		info := le.Uint64(e[8:])
		r.Type = uint32(info)
		if rela {
			r.Addend = int64(le.Uint64(e[16:]))
		}
		sym := info >> 32
		if sym >= nsym {
			return p.errf(int64(h.off)+int64(j*ent), i, "relocation %d: symbol index %d out of range (%d symbols)", j, sym, nsym)
		}
		r.Symbol = p.syms[sym]
		if !check {
			continue
		}
		if rt, ok := p.arch.Reloc(r.Type); ok && rt.Size > 0 {
			if r.Offset > tsize || tsize-r.Offset < uint64(rt.Size) {
				return p.errf(int64(h.off)+int64(j*ent), i, "relocation %d: %s at %#x overruns %s (%#x bytes)", j, rt.Name, r.Offset, tsec.Name, tsize)
			}
		}
	}
	s.Relocs = rs
	return nil
}

// group decodes SHT_GROUP section i.
func (p *parser) group(i int) error {
	s := &p.secs[i]
	h := &p.hdrs[i]
	raw := s.Data
	if len(raw) < 4 || len(raw)%4 != 0 {
		return p.errf(p.shdrOff(i)+32, i, "group size %d is not a positive multiple of 4", len(raw))
	}
	if s.Link == nil || s.Link != p.f.Symtab {
		return p.errf(p.shdrOff(i)+40, i, "sh_link %d is not the symbol table", h.link)
	}
	if uint64(h.info) >= uint64(len(p.syms)) {
		return p.errf(p.shdrOff(i)+44, i, "group signature symbol %d out of range (%d symbols)", h.info, len(p.syms))
	}
	g := &Group{Flags: le.Uint32(raw), Signature: p.syms[h.info]}
	g.Members = make([]*Section, 0, len(raw)/4-1)
	for off := 4; off < len(raw); off += 4 {
		m := le.Uint32(raw[off:])
		if m == 0 || uint64(m) >= uint64(len(p.secs)) {
			return p.errf(int64(h.off)+int64(off), i, "group member %d out of range (%d sections)", m, len(p.secs))
		}
		g.Members = append(g.Members, &p.secs[m])
	}
	s.Group = g
	return nil
}

// generated reports whether Encode generates s's contents from the model.
func (f *File) generated(s *Section) bool {
	switch {
	case s.IsReloc(), s.Type == elf.SHT_GROUP:
		return true
	case s.Type == elf.SHT_SYMTAB:
		return s == f.Symtab
	case s.Type == elf.SHT_SYMTAB_SHNDX:
		return f.Symtab != nil && s.Link == f.Symtab
	case s.Type == elf.SHT_STRTAB:
		return s == f.Shstrtab || (f.Symtab != nil && s == f.Symtab.Link)
	}
	return false
}
