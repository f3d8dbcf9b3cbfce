package elfobj

import (
	"debug/elf"
	"fmt"
	"strconv"
	"strings"
)

// Livepatch module markers (include/uapi/linux/elf.h). The kernel resolves
// symbols with st_shndx SHNLivepatch through kallsyms when the patch or its
// target module loads, and applies relocation sections flagged
// SHFRelaLivepatch itself; linkers do not keep either, so they are set
// after the final link.
const (
	SHNLivepatch     elf.SectionIndex = 0xff20
	SHFRelaLivepatch elf.SectionFlag  = 0x00100000
)

// IsLivepatch reports whether the symbol is a livepatch symbol
// (".klp.sym.<object>.<name>,<sympos>", st_shndx SHNLivepatch).
func (s *Symbol) IsLivepatch() bool { return s.Section == nil && s.Shndx == SHNLivepatch }

// SetLivepatch marks the symbol as resolved by the livepatch core: no
// section, st_shndx SHNLivepatch. Its name, binding and type are the
// caller's to set.
func (s *Symbol) SetLivepatch() {
	s.Section = nil
	s.Shndx = SHNLivepatch
}

// IsLivepatchRelocs reports whether the section is a livepatch relocation
// section (".klp.rela.<object>.<section>", SHFRelaLivepatch).
func (s *Section) IsLivepatchRelocs() bool {
	return s.IsReloc() && s.Flags&SHFRelaLivepatch != 0
}

// The livepatch core reads these names with sscanf (kernel/livepatch/core.c):
// an object name of at most 55 bytes without dots, a symbol name of at
// most 511 bytes without commas.
const (
	klpSymPrefix  = ".klp.sym."
	klpRelaPrefix = ".klp.rela."
	maxKlpObject  = 55
	maxKlpName    = 511
)

// KlpSym is what a livepatch symbol names: a symbol of an object (vmlinux
// or a module) and its position among the symbols of that name in the
// object's kallsyms (0: the name is unique).
type KlpSym struct {
	Object string
	Name   string
	Sympos int
}

// String returns the symbol's name, ".klp.sym.<object>.<name>,<sympos>".
func (k KlpSym) String() string {
	return klpSymPrefix + k.Object + "." + k.Name + "," + strconv.Itoa(k.Sympos)
}

// Check reports what the livepatch core could not read back in the name
// String returns.
func (k KlpSym) Check() error {
	if err := checkKlpObject(k.Object); err != nil {
		return fmt.Errorf("livepatch symbol %s: %w", k, err)
	}
	switch {
	case k.Name == "" || len(k.Name) > maxKlpName || strings.ContainsRune(k.Name, ','):
		return fmt.Errorf("livepatch symbol %s: the symbol name must be 1 to %d bytes without ','", k, maxKlpName)
	case k.Sympos < 0:
		return fmt.Errorf("livepatch symbol %s: negative sympos", k)
	}
	return nil
}

// ParseKlpSym reads ".klp.sym.<object>.<name>,<sympos>".
func ParseKlpSym(name string) (KlpSym, error) {
	rest, ok := strings.CutPrefix(name, klpSymPrefix)
	obj, rest, ok2 := strings.Cut(rest, ".")
	i := strings.LastIndexByte(rest, ',')
	if !ok || !ok2 || i < 0 {
		return KlpSym{}, fmt.Errorf("livepatch symbol %q is not of the form .klp.sym.<object>.<name>,<sympos>", name)
	}
	pos, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		return KlpSym{}, fmt.Errorf("livepatch symbol %q: sympos %q is not a number", name, rest[i+1:])
	}
	k := KlpSym{Object: obj, Name: rest[:i], Sympos: pos}
	if err := k.Check(); err != nil {
		return KlpSym{}, err
	}
	return k, nil
}

// KlpRelaName names the livepatch relocation section of object's symbols
// referenced from section: ".klp.rela.<object>.<section>". The livepatch
// core applies it when object is loaded (vmlinux: with the patch).
func KlpRelaName(object, section string) string {
	return klpRelaPrefix + object + "." + section
}

// ParseKlpRelaName splits ".klp.rela.<object>.<section>"; ok is false for
// any other name and for an object name the livepatch core cannot read.
func ParseKlpRelaName(name string) (object, section string, ok bool) {
	rest, ok := strings.CutPrefix(name, klpRelaPrefix)
	if !ok {
		return "", "", false
	}
	object, section, ok = strings.Cut(rest, ".")
	if !ok || section == "" || checkKlpObject(object) != nil {
		return "", "", false
	}
	return object, section, true
}

func checkKlpObject(obj string) error {
	if obj == "" || len(obj) > maxKlpObject || strings.ContainsRune(obj, '.') {
		return fmt.Errorf("the object name must be 1 to %d bytes without '.'", maxKlpObject)
	}
	return nil
}
