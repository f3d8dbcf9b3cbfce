// Package klpmod assembles a livepatch kernel module from the objects
// objdiff carved out of each translation unit a patch touches.
//
// Build works in four steps, all under Options.WorkDir:
//
//  1. Each unit's object is prepared for linking: the new version of every
//     changed function gets a unique global hidden alias
//     (__kelp_u<N>_<name>) the generated init code can name, and every
//     livepatch relocation (".klp.rela.<object>.<section>" against a
//     ".klp.sym.<object>.<name>,<sympos>" symbol) becomes an ordinary
//     relocation against a placeholder (an undefined weak symbol, which no
//     linker resolves and modpost does not report). Linkers drop the
//     livepatch markers, but they carry ordinary relocations through
//     section merging with the offsets right.
//  2. The patch's klp_patch, one klp_object per owner (vmlinux, or the
//     module the unit belongs to), one klp_func per changed function, the
//     callbacks and states the patch declared with the markers of
//     include/kelp/patch.h, klp_patch.replace and the caller's extra
//     .modinfo strings are written as data (kelp-data.o), laid out as the
//     target's headers lay out the livepatch structures (a probe object
//     compiled once per kernel records sizes and offsets). The init code
//     (klp_enable_patch, the callback dispatchers, MODULE_INFO(livepatch,
//     "Y"), MODULE_LICENSE("GPL")) is the same for every module.
//     Options.Metadata entries (kelp build's kelp.description and one
//     kelp.cve per CVE id) go into .modinfo too, and into an allocated
//     ELF note, kmod.NoteSection (".note.kelp", owner "kelp", type 1,
//     descriptor "key=value\0…"): the kernel keeps no .modinfo of a
//     loaded module but shows its notes in /sys/module/<name>/notes.
//  3. The init object, kelp-data.o and the prepared objects are linked
//     against the target's headers with kbuild's commands, recorded once
//     per kernel: modpost records the CRCs of the vmlinux exports the
//     patch calls in __versions, and the module gets the target's
//     vermagic. Neither the init file nor modpost's NAME.mod.c is
//     compiled per module: the init object is the template's, NAME.mod.o
//     the template's with the module's name, CRCs and dependencies
//     written in, both checked once per kernel against the compiler, and
//     the module is byte for byte what kbuild's make links (both compile
//     the two files without debug information). In a build root, or when
//     the link cannot be recorded, the init file is generated C holding
//     the data too and kbuild's make links, as before.
//  4. The post-link pass turns the relocations against placeholders back
//     into ".klp.rela.<object>.<section>" sections (SHT_RELA,
//     SHF_ALLOC|SHF_INFO_LINK|SHF_RELA_LIVEPATCH, sh_info the section of
//     the final module) and the placeholders into ".klp.sym" symbols
//     (st_shndx SHN_LIVEPATCH), then signs the module when asked to.
//
// # Markers for patch authors
//
// include/kelp/patch.h (and the kpatch-compatible kpatch-macros.h) let a
// patch declare callbacks, states and force-unsafe functions. Each marker
// is a new function or data object with a reserved name prefix, so objdiff
// carries it into the unit's object like any new symbol; Build finds the
// markers by name and wires them into the init code.
package klpmod
