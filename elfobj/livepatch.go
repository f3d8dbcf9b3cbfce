package elfobj

import "debug/elf"

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
