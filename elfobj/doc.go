// Package elfobj reads, edits and writes ELF64 little-endian relocatable
// objects (ET_REL): the .o files a kernel build produces and the pieces a
// livepatch module is assembled from.
//
// # The model
//
// A File is an ordered list of Sections and an ordered list of Symbols.
// Everything that refers to something else does so by pointer, never by
// index:
//
//   - a Symbol names the Section it is defined in (or, when Section is nil,
//     a reserved index such as SHN_UNDEF, SHN_ABS, SHN_COMMON or
//     SHNLivepatch in Shndx);
//   - a Reloc names its Symbol;
//   - a relocation section (SHT_RELA, SHT_REL) names the section it applies
//     to in Info and its symbol table in Link;
//   - a group (SHT_GROUP) names its member sections and signature Symbol;
//   - the symbol table names its string table in Link, and sections with
//     SHF_LINK_ORDER or SHF_INFO_LINK name the sections those fields point
//     to.
//
// Indices exist only in the file. Parse resolves them into pointers and
// Encode computes them afresh, so sections and symbols can be added, removed,
// renamed and reordered without fixing up anything by hand. Each Section and
// Symbol has an Index field that holds its position as of the last Parse,
// Renumber or Encode (section 0 and symbol 0, the null entries, are implicit
// and not in the lists); it is there for callers that need to report or
// compare positions, and no edit has to keep it current.
//
// Sections whose contents follow from the rest of the model carry no bytes:
// the symbol table (File.Symtab) and its SHT_SYMTAB_SHNDX companion are
// generated from File.Symbols, relocation sections from Section.Relocs,
// groups from Section.Group, and the two string tables the file needs
// (section names, File.Shstrtab, and symbol names, File.Symtab.Link) from
// the names in the model. Every other section keeps its contents verbatim
// in Section.Data; SHT_NOBITS sections have only a Size.
//
// Parse aliases Data into the buffer it was given (with the capacity cut to
// the section, so appending copies); treat that buffer as owned by the File.
//
// # Writing
//
// Encode (and WriteTo, WriteFile) lays the file out from scratch: the ELF header, then each section's
// contents in index order at its alignment, then the section header table.
// Local symbols are moved before global ones (stably) and the symbol
// table's sh_info set to the first non-local; SHT_SYMTAB_SHNDX and extended
// section numbering are used when there are SHN_LORESERVE or more sections.
// String tables are deduplicated and share suffixes as GNU as does. The same
// model always produces the same bytes.
//
// # Robustness
//
// Parse checks every offset, size, count and index before using it and
// reports malformed input as a *FormatError naming the file offset and the
// section involved; it does not panic on any input (the package carries a
// fuzz target for Parse and for Parse→Encode→Parse).
//
// # Machines
//
// The layout code is machine independent. What depends on the machine —
// the names, sizes and PC-relativity of relocation types — sits in a small
// table, Arch, with x86-64 filled in; ArchFor returns nil for a machine
// without a table, and such files are still read and written, only without
// relocation range checks.
//
// # Livepatch
//
// The kernel's livepatch module format marks symbols resolved at patch time
// with st_shndx SHNLivepatch and their relocation sections with
// SHFRelaLivepatch; both are plain values of the model (Symbol.Shndx and
// Section.Flags) and survive a round trip untouched, which is what a
// post-link step needs after the linker has dropped them.
package elfobj
