package objdiff

import (
	"debug/elf"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// A unit also carries sections that are neither code nor data nor the
// special sections whose entries objdiff keeps with the code they point
// into: lists the kernel reads once, when it is linked, boots or loads the
// module (initcalls, PCI quirks, BTF id sets, tracepoint and trace event
// tables, scheduler classes, kernel command-line parameters, kprobe and
// error-injection lists). A livepatch cannot add to, remove from or change
// them in the running kernel: the kernel keeps the lists it read. Their
// contents are compared whole between the two compilations, independently
// of layout and numbering (what each section defines, its bytes with the
// relocated fields masked, and what each relocation points to), and any
// difference is refused, so that no such change is ever left out of a
// patch that still builds.

// censused reports whether a section's contents are compared whole: every
// allocated section that objdiff does not model otherwise.
func censused(s *elfobj.Section) bool {
	name := s.Name
	switch {
	case s.Flags&elf.SHF_ALLOC == 0, s.IsReloc(), s.Type == elf.SHT_GROUP:
		return false
	case name == ".init.setup":
		// __setup() kernel parameters: parsed once, at boot.
		return true
	case codeOrData(name), initSection(name):
		// Code and data: their elements are correlated and compared.
		return false
	case specialFor(name) != nil, metaKind(name) != "":
		// Entries kept with their code; metadata refused by checkMetadata.
		return false
	}
	for _, p := range derivedSections {
		if name == p || strings.HasPrefix(name, p+".") {
			return false
		}
	}
	return true
}

// derivedSections hold what follows from the code and is handled with it:
// alternative replacement code (kept with .altinstructions entries),
// objtool's annotations (never linked), fentry locations, notes,
// dynamic-debug descriptors and tracepoint_string() pointers (fresh
// copies carried with the code that uses them), and data the kernel
// refers to from code only (.ref.data, compared as data).
var derivedSections = []string{
	".altinstr_replacement", ".altinstr_aux", ".discard", "__patchable_function_entries",
	".note", "__dyndbg", "__verbose", "__tracepoint_str", ".ref.data", ".ref.rodata",
}

// traceSection reports whether a section lists tracepoints or trace
// events. Removing entries from them is not refused: the running kernel
// keeps the event registered, and code that no longer fires it is what
// the patch carries (kpatch's syscall wrapper drops a patched syscall's
// event metadata this way, the entry code's syscall events still fire).
func traceSection(name string) bool {
	return strings.HasPrefix(name, "__tracepoint") || name == "_ftrace_events" || name == "_ftrace_eval_map" || name == "__bpf_raw_tp_map" || name == "__syscalls_metadata"
}

// sectionKind says what a censused section holds and what the author can
// do instead of changing it.
func sectionKind(name string) (what, hint string) {
	switch {
	case name == ".BTF_ids":
		return "BTF ids (sets and lists of kernel functions and types that BPF checks against, filled in when the kernel or module is linked)",
			"a live patch cannot change a BTF id set or list; change the code that consults it, or ship the change with the next kernel"
	case strings.HasPrefix(name, ".pci_fixup"):
		return "PCI quirks (run by the PCI core when it finds a device)",
			"a live patch cannot add or remove a PCI quirk; apply the change from the quirk function itself if it is patched, or ship it with the next kernel"
	case strings.HasPrefix(name, ".initcall") || name == ".con_initcall.init" || name == ".exitcall.exit":
		return "initcalls and module init/exit calls (run when the kernel booted or the module loaded)",
			"do the new work from a post-patch callback instead of a new initcall"
	case name == ".init.setup":
		return "kernel command-line parameters (parsed at boot)",
			"a live patch cannot add a boot parameter; use the patch module's own parameter or a sysfs file"
	case traceSection(name):
		return "tracepoints and trace events (registered when the kernel booted or the module loaded)",
			"keep the tracepoint and trace event definitions unchanged"
	case strings.HasSuffix(name, "_sched_class"):
		return "scheduler classes (linked in a fixed order the scheduler relies on)",
			"keep the scheduler class definitions unchanged"
	case name == "_kprobe_blacklist" || name == "_error_injection_whitelist":
		return "kprobe and error-injection lists (read at boot or module load)",
			"keep NOKPROBE_SYMBOL() and ALLOW_ERROR_INJECTION() lines unchanged"
	}
	return "data the kernel reads when the unit is linked, booted or loaded, which kelp does not model",
		"leave this section's contents unchanged"
}

// checkCensus refuses any difference in a censused section between the
// two compilations.
func (d *differ) checkCensus() {
	names := map[string]bool{}
	for _, f := range []*elfobj.File{d.in.Orig, d.in.Patched} {
		for _, s := range f.Sections {
			if censused(s) {
				names[s.Name] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		o, p := d.o.census(name), d.p.census(name)
		if strings.Join(o, "\n") == strings.Join(p, "\n") || d.refusedIn(name) {
			continue
		}
		sym, change := censusChange(o, p)
		if traceSection(name) && onlyRemoved(o, p) {
			d.ignore(sym, name, "trace event removed", "the running kernel keeps it registered; "+change)
			continue
		}
		what, hint := sectionKind(name)
		d.refuse(sym, name, fmt.Sprintf("the patch changes %s in section %s (%s): a livepatch cannot change them, the running kernel keeps what it read", what, name, change), hint)
	}
}

// refusedIn reports whether a refusal already names the section (a
// changed object defined in it).
func (d *differ) refusedIn(sec string) bool {
	for _, r := range d.rep.Refusals {
		if r.Section == sec {
			return true
		}
	}
	return false
}

// census describes every section called name of one side, layout- and
// numbering-independently: one line per defined symbol, per relocation
// and for the masked bytes.
func (s *side) census(name string) []string {
	var out []string
	arch := s.f.Arch()
	for _, sec := range s.f.Sections {
		if sec.Name != name {
			continue
		}
		var syms []*elfobj.Symbol
		for _, sym := range s.f.Symbols {
			if sym.Section == sec && sym.Type != elf.STT_SECTION && sym.Type != elf.STT_FILE {
				syms = append(syms, sym)
			}
		}
		sort.SliceStable(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
		for _, sym := range syms {
			out = append(out, fmt.Sprintf("symbol %s %s %d+%d", stripNumbering(sym.Name), typeName(sym.Type), sym.Value, sym.Size))
		}
		if sec.Type == elf.SHT_NOBITS {
			out = append(out, fmt.Sprintf("zeroes %d", sec.MemSize()))
			continue
		}
		data := append([]byte(nil), sec.Data...)
		for _, r := range s.relocs[sec] {
			rt, _ := arch.Reloc(r.Type)
			for i := 0; i < rt.Size; i++ {
				if o := r.Offset + uint64(i); o < uint64(len(data)) {
					data[o] = 0
				}
			}
			out = append(out, fmt.Sprintf("reloc %d %d %s", r.Offset, r.Type, s.censusTarget(sec, r)))
		}
		out = append(out, fmt.Sprintf("bytes %x", data))
	}
	return out
}

// censusTarget names a relocation's target for the census: the correlated
// element on both sides, a new one by its name.
func (s *side) censusTarget(from *elfobj.Section, r elfobj.Reloc) string {
	t := s.target(from, r)
	if t.e != nil {
		e := t.e
		if !s.orig && e.twin != nil {
			e = e.twin
		}
		return fmt.Sprintf("%s%+d", stripNumbering(e.sym.Name), t.delta)
	}
	return s.ident(t)
}

var (
	// initcall ids: __initcall__kmod_<module>__<counter>_<line>_<fn><level>
	// (the module name may contain digits, the counter and line follow __).
	initcallID = regexp.MustCompile(`__[0-9]+_[0-9]+_`)
	// BTF ids: __BTF_ID__<kind>__<name>__<counter><line>.
	btfID = regexp.MustCompile(`__[0-9]+$`)
	// delta is the offset into a relocation target.
	delta = regexp.MustCompile(`[+-][0-9]+$`)
)

// censusChange names the first difference between two censuses: a
// symbol or relocation target only one side has, or the bytes.
func censusChange(o, p []string) (sym, change string) {
	for _, k := range []struct {
		what  string
		field func([]string) map[string]int
	}{{"symbol", symbols}, {"reference to", targets}} {
		om, pm := k.field(o), k.field(p)
		if n := firstMissing(om, pm); n != "" {
			return n, k.what + " " + n + " removed"
		}
		if n := firstMissing(pm, om); n != "" {
			return n, "new " + k.what + " " + n
		}
	}
	if len(o) != len(p) {
		return "", fmt.Sprintf("%d entries become %d", len(o), len(p))
	}
	return "", "its contents change"
}

// onlyRemoved reports whether p has nothing o lacks: no symbol and no
// relocation target that o does not have as often.
func onlyRemoved(o, p []string) bool {
	return firstMissing(symbols(p), symbols(o)) == "" && firstMissing(targets(p), targets(o)) == ""
}

// symbols counts the symbols a census defines.
func symbols(lines []string) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "symbol "); ok {
			m[strings.Fields(rest)[0]]++
		}
	}
	return m
}

// targets counts the relocation targets of a census (without the offset
// into the target).
func targets(lines []string) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "reloc "); ok {
			if f := strings.SplitN(rest, " ", 3); len(f) == 3 {
				m[delta.ReplaceAllString(f[2], "")]++
			}
		}
	}
	return m
}

// firstMissing returns the first (sorted) name a has more often than b.
func firstMissing(a, b map[string]int) string {
	var miss []string
	for n, c := range a {
		if c > b[n] {
			miss = append(miss, n)
		}
	}
	sort.Strings(miss)
	if len(miss) == 0 {
		return ""
	}
	return miss[0]
}
