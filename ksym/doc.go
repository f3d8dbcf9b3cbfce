// Package ksym knows where symbols live in the kernel a livepatch targets:
// which object (vmlinux or a module) defines a name, whether vmlinux or a
// module exports it (with its MODVERSIONS CRC), and, for names defined more
// than once, which position (sympos) the livepatch core will count for the
// instance a given translation unit defines.
//
// # Sources
//
//   - a kallsyms dump (the /proc/kallsyms format of the target kernel:
//     address, type, name, optional [module]); only the order matters, so a
//     dump with KASLR-shifted or zeroed addresses serves as well;
//   - an ELF symbol table (a module .ko, or a vmlinux with debug symbols),
//     whose STT_FILE entries say which source file defined each local;
//   - Module.symvers (exported symbols, CRC, exporting object).
//
// # sympos
//
// The livepatch core finds ".klp.sym.<obj>.<name>,<pos>" by walking the
// object's symbols in kallsyms order and taking the pos-th one called
// name (pos 0: the name must be unique). For vmlinux that order is the
// address order of the linked kernel; for a module it is the order of the
// module's symbol table, without the symbols the loader does not keep.
//
// When the source has STT_FILE entries the instance a unit defines is the
// one under the unit's file name. A kallsyms dump has no file names, so
// the instance is found from its neighbourhood: the symbols a translation
// unit defines are laid out together, in the order the compiler emitted
// them, within each class of output section (.text, .text.unlikely, .data,
// .bss, ...). Each candidate instance is aligned against the unit's own
// symbols around the wanted one; the candidate whose alignment reaches a
// symbol whose name is unique in the object is the one, since no other
// candidate can be that close to the same unique neighbour. When no
// candidate or more than one is anchored this way, Sympos fails and lists
// the candidates with their neighbours rather than guess.
//
// A module's table is its symbol table order, where the linker kept each
// object's locals together and in the object's own order. A module file
// without file symbols (Debian strips them) still locates a unit's local:
// the unit's whole sequence of listable locals, name for name, must occur
// exactly once in the table and contain a name the module has once; the
// wanted local is then the entry at its place in that run.
//
// Nothing here reads the running system; callers pass the dumps in.
package ksym
