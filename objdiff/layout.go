package objdiff

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// Layouts gives the entry size, in bytes, of each special section: arrays
// of fixed-size entries whose first field points into code. The sizes
// belong to the target tree (they follow its config and struct
// definitions); LayoutsFromProbe reads them from LayoutProbe compiled
// there.
type Layouts map[string]int

// special describes one special section: the C type of its entries and
// what a kept entry needs.
type special struct {
	section string
	ctype   string // entry type in the target tree, for the probe
	// key is the offset of a field naming a static key or static call key
	// (-1: none): a key living in a module cannot be used from a patch.
	key int
	// line is the offset of a 2-byte __LINE__ field (-1: none), which is
	// ignored when deciding whether a function changed.
	line int
}

// specials lists the x86-64 special sections of Linux 6.1 to 6.12 whose
// entries point into functions (the first field of each entry).
// .call_sites (call-depth tracking) and .ibt_endbr_seal (IBT) are what
// objtool writes for the call sites and ENDBR instructions of a module
// object (from Linux 6.2): arrays of 32-bit relative addresses.
var specials = []special{
	{"__bug_table", "struct bug_entry", -1, 8},
	{"__ex_table", "struct exception_table_entry", -1, -1},
	{"__jump_table", "struct jump_entry", 8, -1},
	{".altinstructions", "struct alt_instr", -1, -1},
	{".parainstructions", "struct paravirt_patch_site", -1, -1},
	{".smp_locks", "s32", -1, -1},
	{".static_call_sites", "struct static_call_site", 4, -1},
	{".retpoline_sites", "s32", -1, -1},
	{".return_sites", "s32", -1, -1},
	{".call_sites", "s32", -1, -1},
	{".ibt_endbr_seal", "s32", -1, -1},
	{".orc_unwind_ip", "int", -1, -1},
	{".orc_unwind", "struct orc_entry", -1, -1},
	{"__mcount_loc", "unsigned long", -1, -1},
}

// specialSince gives the C preprocessor condition under which the target
// tree has a section's entry type, for sections some kernels lack:
// .parainstructions left with Linux 6.8 (paravirt calls became
// alternatives).
var specialSince = map[string]string{
	".parainstructions": "LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)",
}

func specialFor(name string) *special {
	for i := range specials {
		if specials[i].section == name {
			return &specials[i]
		}
	}
	return nil
}

// probePrefix starts the names of the probe's size-carrying objects.
const probePrefix = "kelp_entsize_"

// LayoutProbe is C source to compile with the target tree's kbuild flags
// (any object's command line will do). For each special section it
// defines an object whose st_size is the section's entry size, so no
// debug information is needed to read them back (LayoutsFromProbe).
var LayoutProbe = func() string {
	var b strings.Builder
	// linux/module.h first: some headers below assume what it brings in
	// (asm/extable.h uses cpu_relax, from asm/processor.h).
	b.WriteString(`// Entry sizes of the kernel's special sections, for kelp.
#include <linux/module.h>
#include <linux/version.h>
#include <linux/types.h>
#include <linux/bug.h>
#include <linux/jump_label.h>
#include <linux/static_call_types.h>
#include <linux/extable.h>
#include <asm/extable.h>
#include <asm/alternative.h>
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#include <asm/paravirt_types.h>
#endif
#include <asm/orc_types.h>

`)
	for _, s := range specials {
		cond := specialSince[s.section]
		if cond != "" {
			fmt.Fprintf(&b, "#if %s\n", cond)
		}
		fmt.Fprintf(&b, "%s %s%s __attribute__((used));\n", s.ctype, probePrefix, probeIdent(s.section))
		if cond != "" {
			b.WriteString("#endif\n")
		}
	}
	return b.String()
}()

func probeIdent(section string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(strings.TrimLeft(section, "._"))
}

// LayoutsFromProbe reads the entry sizes from LayoutProbe compiled in
// the target tree. A section the tree does not have has no size: an
// object carrying it is refused.
func LayoutsFromProbe(f *elfobj.File) (Layouts, error) {
	l := Layouts{}
	for _, s := range specials {
		sym := f.Symbol(probePrefix + probeIdent(s.section))
		if sym == nil && specialSince[s.section] != "" {
			continue
		}
		if sym == nil || sym.Size == 0 {
			return nil, fmt.Errorf("layout probe: no size for %s (%s)", s.section, s.ctype)
		}
		l[s.section] = int(sym.Size)
	}
	return l, nil
}

// String lists the sizes, sorted, for logs.
func (l Layouts) String() string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", n, l[n])
	}
	return b.String()
}
