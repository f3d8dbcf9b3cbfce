package klpmod

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// A module's NAME.mod.o is what the compiler makes of modpost's
// NAME.mod.c. Modules of one kernel differ there only in their name
// (KBUILD_MODNAME, in .modinfo and struct module; the source file's
// name in the symbol table), the CRCs of the
// exports they use (__versions) and the modules they depend on
// (.modinfo): when modpost's NAME.mod.c is the template's but for these,
// NAME.mod.o is the template's object with them written in, which
// recordTemplate checks once per kernel against the compiler's own
// object of a source that differs from the template's in all three.

// modVersion is one __versions entry.
type modVersion struct {
	CRC  uint64
	Name string
}

// modSource is what varies in a NAME.mod.c, and the rest (Skeleton).
type modSource struct {
	Skeleton string
	Versions []modVersion
	Depends  string
}

var (
	versionRE = regexp.MustCompile(`^\t\{ *0x([0-9a-f]+), "([^"\\]+)" \},$`)
	dependsRE = regexp.MustCompile(`^MODULE_INFO\(depends, "([^"\\]*)"\);$`)
)

// parseModC splits modpost's NAME.mod.c.
func parseModC(src string) (*modSource, error) {
	var m modSource
	var sk strings.Builder
	inVersions, sawVersions, sawDepends := false, false, false
	for _, line := range strings.SplitAfter(src, "\n") {
		l := strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(l, "static const struct modversion_info ____versions[]"):
			if sawVersions {
				return nil, errors.New("two __versions arrays")
			}
			inVersions, sawVersions = true, true
		case inVersions && l == "};":
			inVersions = false
		case inVersions:
			if mm := versionRE.FindStringSubmatch(l); mm != nil {
				crc, err := strconv.ParseUint(mm[1], 16, 64)
				if err != nil {
					return nil, err
				}
				m.Versions = append(m.Versions, modVersion{crc, mm[2]})
				sk.WriteString("@VERSION@\n")
				continue
			}
		default:
			if mm := dependsRE.FindStringSubmatch(l); mm != nil {
				if sawDepends {
					return nil, errors.New("two depends entries")
				}
				sawDepends = true
				m.Depends = mm[1]
				sk.WriteString("@DEPENDS@\n")
				continue
			}
		}
		sk.WriteString(line)
	}
	if !sawVersions || !sawDepends || inVersions {
		return nil, errors.New("no __versions array or depends entry")
	}
	// The entries are one block: the skeleton has them as one line.
	m.Skeleton = regexp.MustCompile(`(@VERSION@\n)+`).ReplaceAllString(sk.String(), "@VERSIONS@\n")
	return &m, nil
}

// source writes m back as C.
func (m *modSource) source() string {
	var v strings.Builder
	for _, e := range m.Versions {
		fmt.Fprintf(&v, "\t{ %#010x, %q },\n", e.CRC, e.Name)
	}
	s := strings.Replace(m.Skeleton, "@VERSIONS@\n", v.String(), 1)
	return strings.Replace(s, "@DEPENDS@\n", fmt.Sprintf("MODULE_INFO(depends, %q);\n", m.Depends), 1)
}

// modObject writes the object of a module named name whose NAME.mod.c is
// m, from the template's object tobj (of module tmplName, source tsrc).
func modObject(tobj []byte, tsrc *modSource, name string, m *modSource) ([]byte, error) {
	if m.Skeleton != tsrc.Skeleton {
		return nil, errors.New("the module's .mod.c is not the template's")
	}
	if len(m.Versions) == 0 || len(tsrc.Versions) == 0 {
		return nil, errors.New("no __versions entry")
	}
	// The sections' contents are edited in place: not the template's.
	f, err := elfobj.Parse(bytes.Clone(tobj))
	if err != nil {
		return nil, err
	}
	for _, s := range f.Sections {
		if s.IsReloc() && s.Info != nil && (s.Info.Name == "__versions" || s.Info.Name == ".modinfo") {
			return nil, fmt.Errorf("relocations against %s", s.Info.Name)
		}
	}
	width, err := setVersions(f, tsrc.Versions, m.Versions)
	if err != nil {
		return nil, err
	}
	if err := setModinfo(f, map[string][2]string{
		"name":    {tmplName, name},
		"depends": {tsrc.Depends, m.Depends},
	}); err != nil {
		return nil, err
	}
	if err := setThisModuleName(f, name, width); err != nil {
		return nil, err
	}
	// The source file's symbol.
	files := 0
	for _, sym := range f.Symbols {
		if sym.Type == elf.STT_FILE {
			if sym.Name != tmplName+".mod.c" {
				return nil, fmt.Errorf("a file symbol %s", sym.Name)
			}
			sym.Name = name + ".mod.c"
			files++
		}
	}
	if files != 1 {
		return nil, fmt.Errorf("%d file symbols", files)
	}
	return f.Encode()
}

// setVersions replaces the __versions entries old (those of the
// template) by entries; it returns the width of an entry's name.
func setVersions(f *elfobj.File, old, entries []modVersion) (int, error) {
	s := f.Section("__versions")
	if s == nil || len(s.Data)%len(old) != 0 {
		return 0, errors.New("no __versions section of the template's entries")
	}
	size := len(s.Data) / len(old)
	nameOff := bytes.Index(s.Data[:size], []byte(old[0].Name+"\x00"))
	if nameOff != 4 && nameOff != 8 {
		return 0, errors.New("__versions entries not understood")
	}
	width := size - nameOff
	encode := func(es []modVersion) ([]byte, error) {
		var b []byte
		for _, e := range es {
			if len(e.Name) >= width {
				return nil, fmt.Errorf("symbol name %s longer than a __versions entry holds", e.Name)
			}
			crc := binary.LittleEndian.AppendUint64(nil, e.CRC)
			if nameOff == 4 && e.CRC>>32 != 0 {
				return nil, fmt.Errorf("CRC %#x of %s", e.CRC, e.Name)
			}
			b = append(b, crc[:nameOff]...)
			b = append(b, e.Name...)
			b = append(b, make([]byte, width-len(e.Name))...)
		}
		return b, nil
	}
	if b, err := encode(old); err != nil || !bytes.Equal(b, s.Data) {
		return 0, errors.New("the template's __versions entries not understood")
	}
	b, err := encode(entries)
	if err != nil {
		return 0, err
	}
	for _, sym := range f.Symbols {
		if sym.Section != s || sym.Type == elf.STT_SECTION {
			continue
		}
		if sym.Value != 0 || sym.Size != uint64(len(s.Data)) {
			return 0, fmt.Errorf("symbol %s in __versions not understood", sym.Name)
		}
		sym.Size = uint64(len(b))
	}
	s.Data = b
	return width, nil
}

// setModinfo replaces, in .modinfo, each key's old value by its new one;
// every symbol there names one whole string.
func setModinfo(f *elfobj.File, change map[string][2]string) error {
	s := f.Section(".modinfo")
	if s == nil {
		return errors.New("no .modinfo")
	}
	moved := map[uint64][2]uint64{} // old offset: new offset, new size
	var b []byte
	done := 0
	for off := 0; off < len(s.Data); {
		end := bytes.IndexByte(s.Data[off:], 0)
		if end < 0 {
			return errors.New(".modinfo does not end in NUL")
		}
		str := string(s.Data[off : off+end])
		k, v, _ := strings.Cut(str, "=")
		if c, ok := change[k]; ok {
			if v != c[0] {
				return fmt.Errorf(".modinfo %s=%q, want %q", k, v, c[0])
			}
			str = k + "=" + c[1]
			done++
		}
		moved[uint64(off)] = [2]uint64{uint64(len(b)), uint64(len(str) + 1)}
		b = append(append(b, str...), 0)
		off += end + 1
	}
	if done != len(change) {
		return fmt.Errorf(".modinfo has %d of the %d entries", done, len(change))
	}
	for _, sym := range f.Symbols {
		if sym.Section != s || sym.Type == elf.STT_SECTION {
			continue
		}
		n, ok := moved[sym.Value]
		if !ok || sym.Size != uint64(bytes.IndexByte(s.Data[sym.Value:], 0)+1) {
			return fmt.Errorf("symbol %s in .modinfo not understood", sym.Name)
		}
		sym.Value, sym.Size = n[0], n[1]
	}
	s.Data = b
	return nil
}

// setThisModuleName writes name into struct module's name, an array of
// width bytes (MODULE_NAME_LEN, as __versions' names) holding tmplName.
func setThisModuleName(f *elfobj.File, name string, width int) error {
	s := f.Section(".gnu.linkonce.this_module")
	if s == nil {
		return errors.New("no .gnu.linkonce.this_module")
	}
	old := append([]byte(tmplName), make([]byte, width-len(tmplName))...)
	at := bytes.Index(s.Data, old)
	if at < 0 || bytes.Contains(s.Data[at+1:], []byte(tmplName)) || len(name) >= width {
		return errors.New("the module's name in struct module not understood")
	}
	for _, rs := range f.RelocSections(s) {
		for _, r := range rs.Relocs {
			if r.Offset+8 > uint64(at) && r.Offset < uint64(at+width) {
				return errors.New("a relocation in struct module's name")
			}
		}
	}
	copy(s.Data[at:at+width], append([]byte(name), make([]byte, width-len(name))...))
	return nil
}
