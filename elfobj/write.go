package elfobj

import (
	"debug/elf"
	"fmt"
	"io"
	"math"
	"os"
)

// maxFileAlign caps the file-offset alignment of section contents. The
// alignment that matters to a linker is sh_addralign, which is written as
// it is; the cap only keeps a huge alignment from padding the file.
const maxFileAlign = 4096

// Encode lays the file out and returns its bytes. It renumbers the model
// first (see Renumber) and fails, naming the culprit, when the model is
// inconsistent (see Validate).
func (f *File) Encode() ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.needShndx() {
		f.addShndx()
		if err := f.Validate(); err != nil {
			return nil, err
		}
	}
	w := &writer{f: f}
	return w.encode()
}

// WriteTo writes the encoded file to w.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	b, err := f.Encode()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

// WriteFile writes the encoded file to path.
func (f *File) WriteFile(path string) error {
	b, err := f.Encode()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// needShndx reports whether some symbol's section index needs the
// extended index table and the file has none.
func (f *File) needShndx() bool {
	if len(f.Sections)+1 < int(elf.SHN_LORESERVE) || f.Symtab == nil {
		return false
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB_SHNDX && s.Link == f.Symtab {
			return false
		}
	}
	for _, sym := range f.Symbols {
		if sym.Section != nil && sym.Section.Index >= int(elf.SHN_LORESERVE) {
			return true
		}
	}
	return false
}

// addShndx inserts an SHT_SYMTAB_SHNDX section after the symbol table.
func (f *File) addShndx() {
	f.InsertSectionAfter(f.Symtab, &Section{
		Name:      ".symtab_shndx",
		Type:      elf.SHT_SYMTAB_SHNDX,
		Link:      f.Symtab,
		Addralign: 4,
		Entsize:   4,
	})
	f.Renumber()
}

type writer struct {
	f        *File
	shstr    *strtab
	str      *strtab // nil when the symbols have no string table
	secName  []int32
	symName  []int32
	size     []uint64 // sh_size by section index
	off      []uint64 // sh_offset by section index
	buf      []byte
	firstGlb int
}

func (w *writer) encode() ([]byte, error) {
	f := w.f
	n := len(f.Sections) + 1
	w.strings()
	w.size = make([]uint64, n)
	w.off = make([]uint64, n)
	pos := uint64(ehdrSize)
	for i, s := range f.Sections {
		a := fileAlign(s.Addralign)
		pos = (pos + a - 1) &^ (a - 1)
		w.off[i+1] = pos
		if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL {
			w.size[i+1] = s.Size
			continue
		}
		size := w.contentSize(s)
		w.size[i+1] = size
		pos += size
	}
	shoff := uint64(0)
	total := pos
	if len(f.Sections) > 0 {
		shoff = (pos + 7) &^ 7
		total = shoff + uint64(n)*shdrSize
	}
	if total > math.MaxInt {
		return nil, fmt.Errorf("elfobj: write: file would be %d bytes", total)
	}
	w.buf = make([]byte, total)
	w.header(shoff, n)
	for i, s := range f.Sections {
		w.contents(i+1, s)
	}
	if shoff != 0 {
		w.sectionHeaders(shoff, n)
	}
	return w.buf, nil
}

func fileAlign(a uint64) uint64 {
	if a <= 1 || a&(a-1) != 0 {
		return 1
	}
	return min(a, maxFileAlign)
}

// strings fills the string tables, section names first, then symbol
// names, each in index order.
func (w *writer) strings() {
	f := w.f
	if f.Shstrtab != nil {
		w.shstr = newStrtab(len(f.Sections))
		w.secName = make([]int32, len(f.Sections))
		for i, s := range f.Sections {
			w.secName[i] = w.shstr.add(s.Name)
		}
	}
	if f.Symtab != nil && f.Symtab.Link != nil && f.Symtab.Link.Type == elf.SHT_STRTAB {
		if f.Symtab.Link == f.Shstrtab {
			w.str = w.shstr
		} else {
			w.str = newStrtab(len(f.Symbols))
		}
		w.symName = make([]int32, len(f.Symbols))
		for i, s := range f.Symbols {
			w.symName[i] = w.str.add(s.Name)
		}
	}
	if w.shstr != nil {
		w.shstr.finish()
	}
	if w.str != nil && w.str != w.shstr {
		w.str.finish()
	}
	w.firstGlb = len(f.Symbols)
	for i, s := range f.Symbols {
		if !s.IsLocal() {
			w.firstGlb = i
			break
		}
	}
}

func (w *writer) strtabFor(s *Section) *strtab {
	f := w.f
	if s == f.Shstrtab {
		return w.shstr
	}
	if f.Symtab != nil && s == f.Symtab.Link && s.Type == elf.SHT_STRTAB {
		return w.str
	}
	return nil
}

func (w *writer) contentSize(s *Section) uint64 {
	f := w.f
	nsym := uint64(len(f.Symbols)) + 1
	switch {
	case s == f.Symtab:
		return nsym * symSize
	case s.Type == elf.SHT_SYMTAB_SHNDX && s.Link == f.Symtab:
		return nsym * 4
	}
	if t := w.strtabFor(s); t != nil {
		return t.size
	}
	return s.FileSize()
}

func (w *writer) header(shoff uint64, n int) {
	f := w.f
	b := w.buf
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	b[elf.EI_OSABI] = byte(f.OSABI)
	b[elf.EI_ABIVERSION] = f.ABIVersion
	le.PutUint16(b[16:], uint16(elf.ET_REL))
	le.PutUint16(b[18:], uint16(f.Machine))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[24:], f.Entry)
	le.PutUint64(b[40:], shoff)
	le.PutUint32(b[48:], f.Flags)
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[58:], shdrSize)
	if shoff == 0 {
		return
	}
	if n < int(elf.SHN_LORESERVE) {
		le.PutUint16(b[60:], uint16(n))
	}
	if f.Shstrtab != nil {
		if idx := f.Shstrtab.Index; idx < int(elf.SHN_LORESERVE) {
			le.PutUint16(b[62:], uint16(idx))
		} else {
			le.PutUint16(b[62:], uint16(elf.SHN_XINDEX))
		}
	}
}

func (w *writer) contents(idx int, s *Section) {
	f := w.f
	if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL {
		return
	}
	dst := w.buf[w.off[idx] : w.off[idx]+w.size[idx]]
	switch {
	case s == f.Symtab:
		w.symtab(dst)
	case s.Type == elf.SHT_SYMTAB_SHNDX && s.Link == f.Symtab:
		w.shndx(dst)
	case s.Type == elf.SHT_RELA:
		for j := range s.Relocs {
			r := &s.Relocs[j]
			e := dst[j*relaSize:]
			le.PutUint64(e[0:], r.Offset)
			le.PutUint64(e[8:], relInfo(r))
			le.PutUint64(e[16:], uint64(r.Addend))
		}
	case s.Type == elf.SHT_REL:
		for j := range s.Relocs {
			r := &s.Relocs[j]
			e := dst[j*relSize:]
			le.PutUint64(e[0:], r.Offset)
			le.PutUint64(e[8:], relInfo(r))
		}
	case s.Type == elf.SHT_GROUP:
		if s.Group != nil {
			le.PutUint32(dst, s.Group.Flags)
			for j, m := range s.Group.Members {
				le.PutUint32(dst[4+4*j:], uint32(m.Index))
			}
		}
	default:
		if t := w.strtabFor(s); t != nil {
			t.fill(dst)
		} else {
			copy(dst, s.Data)
		}
	}
}

func relInfo(r *Reloc) uint64 {
	sym := uint64(0)
	if r.Symbol != nil {
		sym = uint64(r.Symbol.Index)
	}
	return sym<<32 | uint64(r.Type)
}

func (w *writer) symtab(dst []byte) {
	for i, s := range w.f.Symbols {
		e := dst[(i+1)*symSize : (i+2)*symSize]
		if w.str != nil {
			le.PutUint32(e[0:], w.str.offset(w.symName[i]))
		}
		e[4] = byte(s.Bind)<<4 | byte(s.Type)&0xf
		e[5] = s.Other
		le.PutUint16(e[6:], symShndx(s))
		le.PutUint64(e[8:], s.Value)
		le.PutUint64(e[16:], s.Size)
	}
}

func symShndx(s *Symbol) uint16 {
	if s.Section == nil {
		return uint16(s.Shndx)
	}
	if s.Section.Index >= int(elf.SHN_LORESERVE) {
		return uint16(elf.SHN_XINDEX)
	}
	return uint16(s.Section.Index)
}

func (w *writer) shndx(dst []byte) {
	for i, s := range w.f.Symbols {
		if s.Section != nil && s.Section.Index >= int(elf.SHN_LORESERVE) {
			le.PutUint32(dst[4*(i+1):], uint32(s.Section.Index))
		}
	}
}

func (w *writer) sectionHeaders(shoff uint64, n int) {
	f := w.f
	null := w.buf[shoff : shoff+shdrSize]
	if n >= int(elf.SHN_LORESERVE) {
		le.PutUint64(null[32:], uint64(n))
	}
	if f.Shstrtab != nil && f.Shstrtab.Index >= int(elf.SHN_LORESERVE) {
		le.PutUint32(null[40:], uint32(f.Shstrtab.Index))
	}
	for i, s := range f.Sections {
		idx := i + 1
		h := w.buf[shoff+uint64(idx)*shdrSize : shoff+uint64(idx+1)*shdrSize]
		if w.shstr != nil {
			le.PutUint32(h[0:], w.shstr.offset(w.secName[i]))
		}
		le.PutUint32(h[4:], uint32(s.Type))
		le.PutUint64(h[8:], uint64(s.Flags))
		le.PutUint64(h[16:], s.Addr)
		le.PutUint64(h[24:], w.off[idx])
		le.PutUint64(h[32:], w.size[idx])
		le.PutUint32(h[40:], w.link(s))
		le.PutUint32(h[44:], w.info(s))
		le.PutUint64(h[48:], s.Addralign)
		le.PutUint64(h[56:], entsize(s))
	}
}

func (w *writer) link(s *Section) uint32 {
	if !linkIsSection(s.Type, s.Flags) {
		return s.RawLink
	}
	if s.Link == nil {
		return 0
	}
	return uint32(s.Link.Index)
}

func (w *writer) info(s *Section) uint32 {
	switch {
	case s.Type == elf.SHT_SYMTAB:
		return uint32(w.firstGlb + 1)
	case s.Type == elf.SHT_GROUP:
		if s.Group == nil || s.Group.Signature == nil {
			return 0
		}
		return uint32(s.Group.Signature.Index)
	case infoIsSection(s.Type, s.Flags):
		if s.Info == nil {
			return 0
		}
		return uint32(s.Info.Index)
	}
	return s.RawInfo
}

// entsize is sh_entsize; fixed for the tables the writer generates.
func entsize(s *Section) uint64 {
	switch s.Type {
	case elf.SHT_SYMTAB:
		return symSize
	case elf.SHT_RELA:
		return relaSize
	case elf.SHT_REL:
		return relSize
	case elf.SHT_GROUP, elf.SHT_SYMTAB_SHNDX:
		return 4
	}
	return s.Entsize
}
