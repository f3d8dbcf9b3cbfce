// Package kmod reads Linux kernel module files (.ko): the module name,
// its .modinfo strings (vermagic, depends, livepatch, ...) and an appended
// module signature. It only reads, and malformed input is an error, never
// a panic.
package kmod

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Module is what a .ko file says about itself.
type Module struct {
	Path string `json:"path,omitempty"`
	// Name is the name the kernel will register the module under.
	Name       string              `json:"name"`
	Vermagic   string              `json:"vermagic"`
	Srcversion string              `json:"srcversion,omitempty"`
	Depends    []string            `json:"depends"`
	Livepatch  bool                `json:"is_livepatch"`
	Info       map[string][]string `json:"modinfo"`
	Signature  *Signature          `json:"signature,omitempty"`
	// KlpObjects are the objects ("vmlinux" or module names) the module
	// has livepatch relocation sections (.klp.rela.<object>.<section>)
	// for, in file order.
	KlpObjects []string `json:"klp_objects,omitempty"`
	// ELFSize is the size of the module without its signature.
	ELFSize int64 `json:"-"`
}

// MarshalJSON writes the module with its vermagic trimmed: the kernel's
// vermagic strings end in a space that means nothing to a reader.
func (m Module) MarshalJSON() ([]byte, error) {
	type plain Module
	p := plain(m)
	p.Vermagic = strings.TrimSpace(p.Vermagic)
	if vs, ok := p.Info["vermagic"]; ok {
		info := make(map[string][]string, len(p.Info))
		for k, v := range p.Info {
			info[k] = v
		}
		trimmed := make([]string, len(vs))
		for i, v := range vs {
			trimmed[i] = strings.TrimSpace(v)
		}
		info["vermagic"] = trimmed
		p.Info = info
	}
	return json.Marshal(p)
}

// ErrNotModule reports input that is not a kernel module.
var ErrNotModule = errors.New("not a kernel module")

// Open reads the module file at path.
func Open(path string) (*Module, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, not a kernel module", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	if m.Name == "" {
		m.Name = NameFromFile(path)
	}
	return m, nil
}

// NameFromFile derives a module name from a file name the way kmod does:
// base name without .ko (and compression suffix), '-' read as '_'.
func NameFromFile(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// Parse reads a module from its bytes.
func Parse(data []byte) (*Module, error) {
	if err := checkMagic(data); err != nil {
		return nil, err
	}
	sig, elfSize, err := splitSignature(data)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data[:elfSize]))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotModule, elfProblem(err))
	}
	if f.Type != elf.ET_REL {
		return nil, fmt.Errorf("%w: ELF type %s, want ET_REL", ErrNotModule, f.Type)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%w: no .modinfo section", ErrNotModule)
	}
	if sec.Type != elf.SHT_NOBITS && (sec.Offset > uint64(elfSize) || sec.FileSize > uint64(elfSize)-sec.Offset) {
		return nil, fmt.Errorf("%w: section .modinfo (%d bytes at offset %d) runs past the end of the %d-byte ELF file", ErrNotModule, sec.FileSize, sec.Offset, elfSize)
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: section .modinfo: %s", ErrNotModule, elfProblem(err))
	}
	if f.Section(".gnu.linkonce.this_module") == nil {
		return nil, fmt.Errorf("%w: no .gnu.linkonce.this_module section (an object file, not a linked module?)", ErrNotModule)
	}
	m := &Module{Info: ParseModinfo(raw), Signature: sig, ELFSize: int64(elfSize)}
	for _, sec := range f.Sections {
		if obj := KlpRelaObject(sec.Name); obj != "" && !slices.Contains(m.KlpObjects, obj) {
			m.KlpObjects = append(m.KlpObjects, obj)
		}
	}
	m.Name = m.first("name")
	m.Vermagic = m.first("vermagic")
	m.Srcversion = m.first("srcversion")
	m.Livepatch = m.first("livepatch") == "Y"
	m.Depends = []string{}
	for _, d := range strings.Split(m.first("depends"), ",") {
		if d != "" {
			m.Depends = append(m.Depends, d)
		}
	}
	if m.Vermagic == "" {
		return nil, fmt.Errorf("%w: .modinfo has no vermagic", ErrNotModule)
	}
	return m, nil
}

// KlpRelaObject returns the object a livepatch relocation section is for
// (".klp.rela.ext4.text.ext4_foo" → "ext4"; object names have no dots),
// "" for other sections.
func KlpRelaObject(section string) string {
	rest, ok := strings.CutPrefix(section, ".klp.rela.")
	if !ok {
		return ""
	}
	obj, _, _ := strings.Cut(rest, ".")
	return obj
}

// compressions are the magic numbers of the compressed module formats the
// kernel's module tools know.
var compressions = []struct{ magic, name string }{
	{"\xfd7zXZ\x00", "xz"},
	{"\x28\xb5\x2f\xfd", "zstd"},
	{"\x1f\x8b", "gzip"},
}

// checkMagic refuses what is not an ELF file, naming a compressed module.
func checkMagic(data []byte) error {
	if bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return nil
	}
	for _, c := range compressions {
		if bytes.HasPrefix(data, []byte(c.magic)) {
			return fmt.Errorf("%w: %s-compressed; decompress it first", ErrNotModule, c.name)
		}
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty file", ErrNotModule)
	}
	return fmt.Errorf("%w: not an ELF file", ErrNotModule)
}

// elfProblem words a debug/elf error: a read past the end is a truncated
// file.
func elfProblem(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated ELF file"
	}
	return "malformed ELF: " + err.Error()
}

func (m *Module) first(key string) string {
	if v := m.Info[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseModinfo splits a .modinfo section: NUL-separated key=value strings
// (padding NULs skipped). Repeated keys keep every value in order.
func ParseModinfo(raw []byte) map[string][]string {
	info := map[string][]string{}
	for _, s := range bytes.Split(raw, []byte{0}) {
		k, v, ok := strings.Cut(string(s), "=")
		if !ok || k == "" {
			continue
		}
		info[k] = append(info[k], v)
	}
	return info
}

// Release returns the kernel release a vermagic string names
// ("6.1.0-56-amd64 SMP preempt mod_unload modversions " → "6.1.0-56-amd64").
func Release(vermagic string) string {
	if f := strings.Fields(vermagic); len(f) > 0 {
		return f[0]
	}
	return ""
}
