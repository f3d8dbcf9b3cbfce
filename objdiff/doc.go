// Package objdiff finds what a source patch changed in one kernel
// translation unit and carves out the object a livepatch module needs,
// or refuses with the precise reason.
//
// The input is the unit compiled twice with the target kernel's own
// flags plus -ffunction-sections -fdata-sections (Input.Orig and
// Input.Patched), the entry sizes of the target's special sections
// (Layouts, read from LayoutProbe compiled in the target tree) and a
// Resolver that says where a symbol lives in the running kernel
// (*ksym.Resolver). Diff is pure: equal inputs give an equal report and
// a byte-identical output object.
//
// # Deciding what changed
//
// Functions and data objects (elements: FUNC and OBJECT symbols and the
// bytes they cover) are correlated by name modulo compiler numbering
// ("foo.isra.0" ~ "foo.isra.3", "count.12" ~ "count.4"), same-named
// static locals by the functions referencing them. Compiler-generated
// statics (__key, __warned, __already_done, __func__, _rs, CSWTCH,
// .data.once, dynamic debug descriptors) are never correlated: code that
// uses them gets fresh copies.
//
// Two correlated elements are equal when their sizes, their bytes with
// every relocated field masked, their relocations (offset, type and a
// layout-independent name of the target: the correlated element and
// offset, the string for string literals, the bytes for anonymous code
// and constants) and the special-section entries anchored in them agree.
// __LINE__ fields of __bug_table entries are ignored, and a function
// whose only differences are line-number immediates passed to warning
// helpers is reported as LineOnly, not changed. A changed .cold fragment
// or .part piece marks its parents changed.
//
// # What the output carries
//
// Changed functions (each a klp_func of the patch, with the name and
// sympos of the original), new functions and data, and what they
// reference that the running kernel lacks: fresh compiler-generated
// statics, .cold fragments, string literals, replacement code. Every
// other reference goes to the running kernel: a normal relocation to a
// vmlinux export (its CRC in Report.Exports), else a livepatch
// relocation in ".klp.rela.<object>.<section>" against
// ".klp.sym.<object>.<name>,<sympos>" (SHN_LIVEPATCH), also listed in
// Report.KlpRelocs with section, offset, type and addend so a module
// assembler can write them after its final link. A pointer (not a call)
// to an existing function keeps pointing to the kernel's original, which
// outlives the patch.
//
// Entries of __bug_table, __ex_table, __jump_table, .altinstructions,
// .parainstructions, .smp_locks, .static_call_sites, .retpoline_sites,
// .return_sites, .orc_unwind_ip (with .orc_unwind in lockstep) and
// __mcount_loc are kept exactly when their first field points into
// carried code; a kept alternative brings its replacement code.
//
// # Refusals
//
// Changed existing data (initial value or size), changed __init/__exit
// code, changed functions without an fentry call, jump labels and static
// calls whose key lives in a module, changed section groups, symbols
// changing binding or type, exported symbols whose CRC changes, and
// references that cannot be located in the running kernel (with the
// candidates when a name is ambiguous) are refused. Each Refusal names
// the unit, the symbol and section, the reason and, where there is one,
// the way out. Diff then returns a *refusal.Error and the report, without
// an output object.
package objdiff
