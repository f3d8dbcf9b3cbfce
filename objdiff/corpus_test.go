package objdiff

import (
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/refusal"
)

// corpusCase is what one patch of testdata/corpus must produce.
type corpusCase struct {
	name string
	// changed is the exact set of functions replaced (klp_funcs), over
	// all units of the patch; new the exact set of new symbols.
	changed, new []string
	// klp must all be among the livepatch relocations
	// ("object:symbol:sympos"); exports among the normal ones.
	klp, exports []string
	// notKlp must not be livepatch relocations.
	notKlp []string
	// helpers, fresh and lineOnly must be exactly these.
	helpers, fresh, lineOnly []string
	// special gives the exact number of entries kept per section, or
	// someEntries where the number is the compiler's (ORC entries: one per
	// change of the unwind state in the kept code).
	special map[string]int
	// refusals, when set, are expected instead of an output: each
	// "symbol|section|text in the reason".
	refusals []string
	// klpAt must all be livepatch relocations of the output, each
	// "symbol:target": against target, at the place symbol is defined.
	klpAt []string
	// ignored must all be among the report's deliberately ignored
	// differences: each "symbol|section|what|text in the reason".
	ignored []string
	// either: the patch takes a Debian fix out of a kernel that has it;
	// on an older kernel, without the fix, its reverse puts it in. Both
	// directions change the same functions.
	either bool
}

var corpus = []corpusCase{
	{
		name:    "body-change",
		changed: []string{"loadavg_proc_show"},
		klp:     []string{"vmlinux:get_avenrun:0", "vmlinux:nr_running:0", "vmlinux:nr_threads:0"},
		exports: []string{"seq_printf", "__fentry__"},
		special: map[string]int{"__mcount_loc": 1, ".orc_unwind_ip": someEntries, ".orc_unwind": someEntries, ".return_sites": 1},
	},
	{
		name:    "string-literal",
		changed: []string{"loadavg_proc_show"},
		klp:     []string{"vmlinux:nr_threads:0"},
		special: map[string]int{"__mcount_loc": 1},
	},
	{
		name:    "new-static-function",
		changed: []string{"version_proc_show"},
		new:     []string{"kelp_version_note"},
		klp:     []string{"vmlinux:linux_proc_banner:0"},
		special: map[string]int{"__mcount_loc": 2},
	},
	{
		name:    "new-global-cross-object",
		changed: []string{"version_proc_show"},
		new:     []string{"kelp_proc_reads", "reads.0"},
		notKlp:  []string{"kelp_proc_reads"},
	},
	{
		name:    "new-static-data",
		changed: []string{"uptime_proc_show"},
		new:     []string{"kelp_uptime_reads"},
		klp:     []string{"vmlinux:get_idle_time:0"},
	},
	{
		// The function-scope static is referenced where it lives in the
		// running kernel, not duplicated; the WARN_ONCE flag is fresh.
		name:    "static-local-kept",
		changed: []string{"__queue_work"},
		helpers: []string{"__queue_work.cold"},
		fresh:   []string{"__already_done.15"},
		klp:     []string{"vmlinux:printed_dbg_warning.6:0", "vmlinux:wq_unbound_cpumask:0", "vmlinux:__tracepoint_workqueue_queue_work:0"},
		special: map[string]int{"__bug_table": 3, "__jump_table": 2, ".static_call_sites": 4},
	},
	{
		name:    "clone-isra",
		changed: []string{"uid_hash_find.isra.0"},
		special: map[string]int{".smp_locks": 1, "__mcount_loc": 1},
	},
	{
		name:    "clone-constprop",
		changed: []string{"process_vm_rw_core.constprop.0"},
		klp:     []string{"vmlinux:find_get_task_by_vpid:0", "vmlinux:mm_access:0"},
	},
	{
		// A string in a .cold fragment of a .part piece changes: the
		// piece changes, and so does the function its head is inlined
		// into.
		name:    "clone-part-cold",
		changed: []string{"rseq_warn_flags.part.0", "__rseq_handle_notify_resume"},
		helpers: []string{"rseq_warn_flags.part.0.cold", "__rseq_handle_notify_resume.cold"},
		fresh:   []string{"__already_done.2", "__func__.0", "_rs.1"},
		klp:     []string{"vmlinux:force_sigsegv:0", "vmlinux:__tracepoint_rseq_update:0"},
	},
	{
		name:    "warn-line-shift",
		special: map[string]int{},
	},
	{
		// Lines moved above ext4_error() and friends change the line
		// immediates they are passed, in seven functions of the ext4
		// module. Five pass them only in the __LINE__ argument of a
		// known helper: not changed, and each ignored immediate is
		// listed. ext4_free_inode passes __LINE__ to ext4_msg() as a
		// printf argument, which cannot be told from any other
		// constant: it is changed, and its tracepoint, whose key lives
		// in the ext4 module, is inert.
		name:     "line-immediates-only",
		lineOnly: []string{"ext4_read_inode_bitmap", "ext4_mark_inode_used", "__ext4_new_inode", "ext4_orphan_get", "ext4_init_inode_table"},
		changed:  []string{"ext4_free_inode"},
		helpers:  []string{"ext4_free_inode.cold"},
		fresh:    []string{"__func__"},
		ignored: []string{
			"ext4_read_inode_bitmap|.text.ext4_read_inode_bitmap|__LINE__ immediate|passed to __ext4_error (argument 3)",
			"__ext4_new_inode|.text.__ext4_new_inode|__LINE__ immediate|passed to __ext4_journal_get_write_access (argument 2)",
			"ext4_free_inode|__jump_table|tracepoint|tracepoint ext4_free_inode is inert",
			"ext4_free_inode|.static_call_sites|static call site|key __SCK__tp_func_ext4_free_inode lives in module ext4",
		},
	},
	{
		// An added pr_debug shifts the __UNIQUE_ID counter of every
		// later dynamic debug descriptor of fs/aio.c: only the function
		// it is added to changes.
		name:    "pr-debug-added",
		changed: []string{"aio_free_ring"},
		fresh:   []string{"__UNIQUE_ID_ddebug", "__UNIQUE_ID_ddebug", "__func__"},
	},
	{
		name:    "pr-debug-added-irq",
		changed: []string{"__irq_domain_publish"},
		fresh:   []string{"__UNIQUE_ID_ddebug", "__UNIQUE_ID_ddebug", "__func__"},
	},
	{
		// A __refdata variable (.ref.data) gets another initial value.
		name:     "fail-refdata",
		refusals: []string{"memblock_memory|.ref.data|existing object in .ref.data changes"},
	},
	{
		name:     "fail-refdata-e820",
		refusals: []string{"e820_table_kexec|.ref.data|existing object in .ref.data changes (reference at +0x0 now to e820_table_firmware_init (was e820_table_kexec_init))"},
	},
	{
		// A new array is carried on its own; a reference computed past
		// its end (or before its start) would land on whatever follows
		// it in the patch module.
		name:     "fail-reloc-out-of-range",
		refusals: []string{"kelp_reads|.text.version_proc_show|points to kelp_reads+48, outside the 32 bytes the patch carries of it"},
	},
	{
		name:     "fail-reloc-out-of-range-neg",
		refusals: []string{"kelp_hits|.text.uptime_proc_show|points to kelp_hits-16, outside the 8 bytes the patch carries of it"},
	},
	{
		// Two new variables in one section (.data..read_mostly) are two
		// pieces of the output, each with its own livepatch relocation.
		name:    "two-pieces-one-section",
		changed: []string{"oops_may_print"},
		new:     []string{"kelp_pause", "kelp_pause_flag"},
		klpAt:   []string{"kelp_pause:pause_on_oops", "kelp_pause_flag:pause_on_oops_flag"},
	},
	{
		// The reported silent drop: a changed error code next to the
		// __LINE__ argument of __ext4_error().
		name:    "error-code-change",
		changed: []string{"ext4_wait_block_bitmap"},
		fresh:   []string{"__func__"},
	},
	{
		// Journal credits passed next to the __LINE__ argument of
		// __ext4_journal_start().
		name:    "journal-credits-change",
		changed: []string{"ext4_handle_inode_extension"},
		fresh:   []string{"__func__"},
	},
	{
		name:    "exception-table",
		changed: []string{"filldir64"},
		klp:     []string{"vmlinux:verify_dirent_name:0"},
		special: map[string]int{"__ex_table": 9, ".altinstructions": 5},
	},
	{
		name:    "alternatives",
		changed: []string{"fillonedir"},
		special: map[string]int{".altinstructions": 5, "__ex_table": 8},
	},
	{
		// A module's alternative whose replacement code jumps back into
		// its function (static_cpu_has): only the kept entry's
		// replacement is relocated. The replacement code of the object's
		// other functions jumps into those (kvm_amd's own, unexported),
		// which the patch must neither reference nor be refused for.
		name:    "alt-replacement-module-kvm",
		changed: []string{"invlpg_interception"},
		special: map[string]int{".altinstructions": 2},
		klp:     []string{"kvm:kvm_mmu_invlpg:0", "kvm:kvm_skip_emulated_instruction:0"},
	},
	{
		// The same in vmlinux (perf's LBR code, 13 static_cpu_has in
		// its functions): no livepatch relocation to the other functions
		// (checkReplacementRelocs), and only the changed one changes.
		name:    "alt-replacement-vmlinux-lbr",
		changed: []string{"intel_pmu_lbr_reset"},
		special: map[string]int{".altinstructions": 2},
	},
	{
		// free_pages_prepare is inlined into its two callers, whose
		// static_cpu_has alternatives move in .altinstr_replacement.
		// pfn_valid (inline, so notrace) is unchanged: its alternative
		// with an empty replacement must read the same although another
		// fragment now follows the place it points to. (It was taken as
		// changed, and the fix refused for its missing fentry call.)
		name:    "alt-replacement-empty-page-alloc",
		changed: []string{"__free_pages_ok", "free_pcp_prepare"},
	},
	{
		// Debian's fix of tlv_data_is_valid and add_ext_adv_data
		// (6.1.176), taken back out (put in on an older kernel). The table exp_features points to an
		// anonymous .rodata constant (ZERO_KEY: 17 zero bytes, not a
		// mergeable string), whose extent ends at the next place anything
		// refers to. The debug information of one side refers into those
		// bytes (a variable's location); that reference delimits nothing
		// the kernel reads, so the table is unchanged. (It was taken as
		// changed data and the patch refused.)
		name:    "anon-rodata-debug-ref-bluetooth",
		either:  true,
		changed: []string{"tlv_data_is_valid", "add_ext_adv_data"},
		fresh:   []string{"__UNIQUE_ID_ddebug", "__func__"},
	},
	{
		// The key is an exported vmlinux static key: a normal relocation.
		name:    "jump-label-vmlinux",
		changed: []string{"set_freezable"},
		exports: []string{"freezer_active"},
		klp:     []string{"vmlinux:freezer_lock:0"},
		special: map[string]int{"__jump_table": 1},
	},
	{
		name:    "paravirt",
		changed: []string{"kthread_use_mm"},
		special: map[string]int{".parainstructions": 2, ".altinstructions": 2, ".smp_locks": 2, "__bug_table": 2},
	},
	{
		// call_rcu(..., delayed_put_task_struct) takes the address of an
		// existing function: it keeps pointing to the kernel's copy.
		name:    "smp-locks",
		changed: []string{"put_task_struct_rcu_user"},
		klp:     []string{"vmlinux:delayed_put_task_struct:0"},
		special: map[string]int{".smp_locks": 1, "__bug_table": 1},
	},
	{
		name:    "bug-table",
		changed: []string{"stack_trace_print"},
		helpers: []string{"stack_trace_print.cold"},
		special: map[string]int{"__bug_table": 1},
	},
	{
		name:    "tracepoint",
		changed: []string{"delayed_put_task_struct"},
		klp:     []string{"vmlinux:__tracepoint_sched_process_free:0", "vmlinux:__SCT__tp_func_sched_process_free:0", "vmlinux:__SCK__tp_func_sched_process_free:0"},
		special: map[string]int{"__jump_table": 1, ".static_call_sites": 2},
	},
	{
		name:    "static-inline-callers",
		changed: []string{"kthread_func", "kthread_probe_data", "kthread_is_per_cpu"},
	},
	{
		name:     "fail-init-function",
		refusals: []string{"proc_loadavg_init|.init.text|changed __init function"},
	},
	{
		name:     "fail-data-initial-value",
		refusals: []string{"panic_timeout|.data.panic_timeout|existing data changes"},
	},
	{
		name: "fail-data-size",
		refusals: []string{
			"warn_limit|.data..read_mostly|size of existing data changes from 4 to 8 bytes",
			"kern_panic_table|.data.kern_panic_table|existing data changes",
		},
	},
	{
		name:     "fail-notrace",
		refusals: []string{"core_kernel_text|.text.core_kernel_text|no fentry call"},
	},
	{
		name: "fail-module-static-key",
		refusals: []string{
			"dm_submit_bio|__jump_table|key stats_enabled lives in module dm_mod",
			"dm_submit_bio|__jump_table|key zoned_enabled lives in module dm_mod",
		},
	},
	{
		name:     "fail-sympos-ambiguous",
		refusals: []string{"warned.1|.text.__flush_smp_call_function_queue|vmlinux defines 2 symbols called warned.1"},
	},
	{
		// A changed __weak default that the running kernel runs (kallsyms
		// lists it weak, between this unit's neighbours) is patched.
		name:    "weak-default-runs",
		changed: []string{"page_is_ram"},
	},
	{
		// Each variable keeps its name and value but moves to a section of
		// another kind: the running kernel's copy stays where it is.
		name:     "fail-section-ro-after-init",
		refusals: []string{"secretmem_enable|.bss.secretmem_enable|moves from section .data..ro_after_init to .bss.secretmem_enable (read-only after init → writable, zero-initialised)"},
	},
	{
		name:     "fail-section-ro-after-init-added",
		refusals: []string{"sysctl_protected_fifos|.data..ro_after_init|moves from section .data..read_mostly to .data..ro_after_init"},
	},
	{
		name:     "fail-section-read-mostly",
		refusals: []string{"did_panic|.bss.did_panic|moves from section .data..read_mostly to .bss.did_panic"},
	},
	{
		name:     "fail-section-const-dropped",
		refusals: []string{"reboot_cmd|.data.reboot_cmd|moves from section .rodata.reboot_cmd to .data.reboot_cmd (read-only → writable)"},
	},
	{
		// The __init users of the variable are refused as well.
		name: "fail-section-initdata",
		refusals: []string{
			"early_ioremap_debug|.bss.early_ioremap_debug|moves from section .init.data to .bss.early_ioremap_debug (writable, freed after init → writable, zero-initialised)",
			"early_ioremap_debug_setup|.init.text|changed __init function",
			"__early_ioremap|.init.text|changed __init function",
			"early_iounmap|.init.text|changed __init function",
		},
	},
	{
		// x86's arch/x86/kernel/cpu/bugs.c overrides the default.
		name:     "fail-weak-overridden",
		refusals: []string{"cpu_show_meltdown|.text.cpu_show_meltdown|vmlinux's cpu_show_meltdown is a strong definition from another unit"},
	},
	{
		// arch/x86/events/core.c overrides the default.
		name:     "fail-weak-overridden-perf",
		refusals: []string{"perf_event_print_debug|.text.unlikely.perf_event_print_debug|vmlinux's perf_event_print_debug is a strong definition from another unit"},
	},
	{
		// The static local is renamed: the patched function would start
		// from a new, zeroed flag.
		name: "fail-static-local-removed",
		refusals: []string{
			"stfu|.text.drop_caches_sysctl_handler|in drop_caches_sysctl_handler was removed",
			"stfu|.text.unlikely.drop_caches_sysctl_handler|in drop_caches_sysctl_handler.cold was removed",
		},
	},
	{
		// wq_select_unbound_cpu is inlined into __queue_work.
		name: "fail-static-local-removed-wq",
		refusals: []string{
			"printed_dbg_warning|.text.__queue_work|in __queue_work was removed",
			"printed_dbg_warning|.text.unlikely.__queue_work|in __queue_work.cold was removed",
		},
	},
	{
		name:     "fail-new-export",
		refusals: []string{"panic_on_taint|___ksymtab_gpl|new export"},
	},
	{
		name: "fail-new-param",
		refusals: []string{
			"__param_carrier_off|__param|new module parameter",
			"parmtype=carrier_off:bool|.modinfo|new module information",
		},
	},
	{
		name:     "fail-param-perm",
		refusals: []string{"__param_enable|__param|module parameter changes"},
	},
	// BTF ids are named with __COUNTER__ and __LINE__: a fix above them
	// renames them all, and neither the ids nor the data referring to
	// them changes.
	{
		name:    "btf-ids-line-shift-lsm",
		changed: []string{"bpf_lsm_verify_prog"},
	},
	{
		// sk_reuseport_load_bytes inlines the changed helper.
		name:    "btf-ids-line-shift-net",
		changed: []string{"bpf_skb_load_bytes", "sk_reuseport_load_bytes"},
	},
	// Lists the kernel reads once, at link, boot or module load: any
	// change is refused, never dropped as "no functional change".
	{
		name:     "fail-btf-ids-removed",
		refusals: []string{"__BTF_ID__func__bpf_lsm_task_alloc|.BTF_ids|BTF ids (sets and lists of kernel functions and types that BPF checks against, filled in when the kernel or module is linked) in section .BTF_ids (symbol __BTF_ID__func__bpf_lsm_task_alloc removed)"},
	},
	{
		name:     "fail-btf-ids-added",
		refusals: []string{"__BTF_ID__func__vfs_fsync|.BTF_ids|(new symbol __BTF_ID__func__vfs_fsync)"},
	},
	{
		name:     "fail-pci-quirk-iommu",
		refusals: []string{"quirk_iommu_igfx|.pci_fixup_header|PCI quirks (run by the PCI core when it finds a device) in section .pci_fixup_header (new reference to quirk_iommu_igfx)"},
	},
	{
		name:     "fail-pci-quirk-removed",
		refusals: []string{"quirk_nopcipci|.pci_fixup_final|(reference to quirk_nopcipci removed)"},
	},
	{
		name:     "fail-initcall-added",
		refusals: []string{"__initcall__kmod_proc__proc_version_init7|.initcall7.init|initcalls and module init/exit calls"},
	},
	{
		name:     "fail-boot-param-added",
		refusals: []string{"__setup_kelp_no_console_suspend|.init.setup|kernel command-line parameters (parsed at boot)"},
	},
}

// TestCorpus compiles each patch of testdata/corpus against the test
// kernel's source and checks objdiff's answer.
func TestCorpus(t *testing.T) {
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			results := diffPatch(t, c.name, c.either)
			checkCase(t, c, results)
		})
	}
}

func checkCase(t *testing.T, c corpusCase, results []unitResult) {
	var changed, news, klp, exports, helpers, fresh, lineOnly, refusals, ignored, klpAt []string
	special := map[string]int{}
	for _, r := range results {
		if r.err != nil {
			var refused *refusal.Error
			if !errors.As(r.err, &refused) {
				t.Fatalf("%s: %v", r.unit.Object, r.err)
			}
		}
		rep := r.res.Report
		for _, f := range rep.Changed {
			changed = append(changed, f.Name)
			if len(f.Reasons) == 0 {
				t.Errorf("%s changed without a reason", f.Name)
			}
		}
		for _, n := range rep.New {
			news = append(news, n.Name)
		}
		for _, k := range rep.KlpRelocs {
			klp = append(klp, fmt.Sprintf("%s:%s:%d", k.Object, k.Symbol, k.Sympos))
		}
		for _, e := range rep.Exports {
			exports = append(exports, e.Name)
		}
		helpers = append(helpers, rep.Helpers...)
		for _, f := range rep.Fresh {
			fresh = append(fresh, stripNumbering(f))
		}
		for _, ig := range rep.Ignored {
			ignored = append(ignored, stripNumbering(ig.Symbol)+"|"+ig.Section+"|"+ig.What+"|"+ig.Reason)
			if ig.Symbol == "" || ig.What == "" || ig.Reason == "" {
				t.Errorf("ignored difference %+v does not say what and why", ig)
			}
		}
		lineOnly = append(lineOnly, rep.LineOnly...)
		for _, s := range rep.Special {
			special[s.Section] += s.Kept
		}
		for _, f := range rep.Refusals {
			refusals = append(refusals, f.Symbol+"|"+f.Section+"|"+f.Reason)
			if f.Unit != r.unit.Object || f.Reason == "" {
				t.Errorf("refusal %+v does not name the unit and the reason", f)
			}
		}
		if r.err == nil && r.res.Object != nil {
			klpAt = append(klpAt, checkOutput(t, r.res)...)
		}
		if r.err != nil && r.res.Object != nil {
			t.Errorf("%s: refused but produced an object", r.unit.Object)
		}
	}
	if c.refusals != nil {
		for _, w := range c.refusals {
			sym, rest, _ := strings.Cut(w, "|")
			sec, text, _ := strings.Cut(rest, "|")
			if !slices.ContainsFunc(refusals, func(r string) bool {
				rsym, rest, _ := strings.Cut(r, "|")
				return (rsym == sym || stripNumbering(rsym) == sym) && strings.HasPrefix(rest, sec+"|") && strings.Contains(rest, text)
			}) {
				t.Errorf("no refusal %q among %q", w, refusals)
			}
		}
		if len(refusals) != len(c.refusals) {
			t.Errorf("refusals %q, want %d", refusals, len(c.refusals))
		}
		return
	}
	if len(refusals) > 0 {
		t.Fatalf("refused: %q", refusals)
	}
	sameSet(t, "changed", changed, c.changed)
	sameSet(t, "new", news, c.new)
	sameSet(t, "helpers", helpers, c.helpers)
	want := slices.Clone(c.fresh)
	for i := range want {
		want[i] = stripNumbering(want[i])
	}
	sameSet(t, "fresh", fresh, want)
	for _, w := range c.ignored {
		parts := strings.SplitN(w, "|", 4)
		if !slices.ContainsFunc(ignored, func(g string) bool {
			return strings.HasPrefix(g, strings.Join(parts[:3], "|")+"|") && strings.Contains(g, parts[3])
		}) {
			t.Errorf("no ignored difference %q among %q", w, ignored)
		}
	}
	sameSet(t, "line-only", lineOnly, c.lineOnly)
	for _, k := range c.klp {
		if !slices.Contains(klp, k) {
			t.Errorf("no livepatch relocation to %s among %q", k, klp)
		}
	}
	for _, n := range c.notKlp {
		for _, k := range klp {
			if strings.Contains(k, ":"+n+":") {
				t.Errorf("%s is a livepatch relocation, want it resolved inside the patch", k)
			}
		}
	}
	for _, k := range c.klpAt {
		if !slices.Contains(klpAt, k) {
			t.Errorf("no livepatch relocation %s among %q", k, klpAt)
		}
	}
	for _, e := range c.exports {
		if !slices.Contains(exports, e) {
			t.Errorf("no normal relocation to the export %s among %q", e, exports)
		}
	}
	for sec, n := range c.special {
		if n == someEntries && special[sec] == 0 || n != someEntries && special[sec] != n {
			t.Errorf("%s: %d entries kept, want %s", sec, special[sec], entries(n))
		}
	}
	// The ORC tables are parallel: one unwind entry per address entry.
	if special[".orc_unwind_ip"] != special[".orc_unwind"] {
		t.Errorf(".orc_unwind_ip keeps %d entries, .orc_unwind %d", special[".orc_unwind_ip"], special[".orc_unwind"])
	}
	if c.special != nil && len(c.special) == 0 && len(special) > 0 {
		t.Errorf("special entries kept with nothing changed: %v", special)
	}
}

// someEntries in corpusCase.special: at least one entry.
const someEntries = -1

func entries(n int) string {
	if n == someEntries {
		return "at least one"
	}
	return fmt.Sprint(n)
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	sort.Strings(g)
	sort.Strings(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s = %q, want %q", what, g, w)
	}
}

// checkOutput checks the output object: it encodes and reads back, every
// livepatch relocation is in a .klp.rela section against a .klp.sym
// symbol, inside the section it applies to, and the report's relocations
// are exactly those. It returns, for each livepatch relocation at the
// start of a symbol, "symbol:target".
func checkOutput(t *testing.T, res *Result) []string {
	t.Helper()
	data, err := res.Object.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	f, err := elfobj.Parse(data)
	if err != nil {
		t.Fatalf("parse output: %v", err)
	}
	n := 0
	var at []string
	for _, s := range f.Sections {
		if !strings.HasPrefix(s.Name, ".klp.rela.") {
			continue
		}
		if !s.IsLivepatchRelocs() {
			t.Errorf("%s lacks SHF_RELA_LIVEPATCH", s.Name)
		}
		if s.Info == nil || s.Name != ".klp.rela."+strings.SplitN(strings.TrimPrefix(s.Name, ".klp.rela."), ".", 2)[0]+"."+s.Info.Name {
			t.Errorf("%s does not apply to a section of its name", s.Name)
			continue
		}
		for _, r := range s.Relocs {
			n++
			if !r.Symbol.IsLivepatch() || !strings.HasPrefix(r.Symbol.Name, ".klp.sym.") {
				t.Errorf("%s: relocation against %s, want a .klp.sym symbol", s.Name, r.Symbol)
			}
			if r.Offset >= s.Info.MemSize() {
				t.Errorf("%s: relocation at %#x outside its %d-byte section", s.Name, r.Offset, s.Info.MemSize())
			}
			target := strings.TrimPrefix(r.Symbol.Name, ".klp.sym.")
			_, target, _ = strings.Cut(target, ".")
			target, _, _ = strings.Cut(target, ",")
			for _, sym := range f.Symbols {
				if sym.Section == s.Info && sym.Value == r.Offset && sym.Name != "" && sym.Type != elf.STT_SECTION {
					at = append(at, sym.Name+":"+target)
				}
			}
		}
	}
	if n != len(res.Report.KlpRelocs) {
		t.Errorf("%d livepatch relocations in the object, %d in the report", n, len(res.Report.KlpRelocs))
	}
	checkReplacementRelocs(t, f)
	checkAuxRelocs(t, f)
	for _, fn := range res.Report.Changed {
		if s := f.Symbol(fn.Symbol); s == nil || s.Section == nil || s.Section.Name != fn.Section {
			t.Errorf("changed function %s: symbol %s not defined in %s", fn.Name, fn.Symbol, fn.Section)
		}
	}
	return at
}

// checkAuxRelocs: the output's out-of-line static_cpu_has() code
// (.altinstr_aux) references only what the output defines and exports
// of the kernel. The pieces of the object's other functions jump back
// into those functions; they never run from the patch, and the patch
// must neither resolve nor refuse what they reference.
func checkAuxRelocs(t *testing.T, f *elfobj.File) {
	t.Helper()
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA || s.Info == nil || s.Info.Name != ".altinstr_aux" {
			continue
		}
		if strings.HasPrefix(s.Name, ".klp.rela.") {
			t.Errorf("%s: %d livepatch relocations from out-of-line static_cpu_has code", s.Name, len(s.Relocs))
			continue
		}
		for _, r := range s.Relocs {
			if r.Symbol == nil || r.Symbol.Section == nil && !r.Symbol.IsUndefined() {
				t.Errorf("%s: relocation at %#x against %s", s.Name, r.Offset, symName(r.Symbol))
			}
		}
	}
}

// checkReplacementRelocs: every relocation of the output's replacement
// code (normal or livepatch) lies in the replacement of one of the
// output's alternatives; replacement code no kept alternative uses never
// runs, and what it references must not be carried or resolved.
func checkReplacementRelocs(t *testing.T, f *elfobj.File) {
	t.Helper()
	var alt, repl *elfobj.Section
	for _, s := range f.Sections {
		switch s.Name {
		case ".altinstructions":
			alt = s
		case ".altinstr_replacement":
			repl = s
		}
	}
	if repl == nil {
		return
	}
	if alt == nil {
		t.Errorf("replacement code carried without alternatives")
		return
	}
	// Each entry has two relocations, to its instruction and to its
	// replacement; the entry's last byte is the replacement's length.
	var rs []elfobj.Reloc
	for _, s := range f.Sections {
		if s.Type == elf.SHT_RELA && s.Info == alt {
			rs = append(rs, s.Relocs...)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	if len(rs) == 0 || len(rs)%2 != 0 || len(alt.Data)%(len(rs)/2) != 0 {
		t.Fatalf(".altinstructions: %d relocations over %d bytes", len(rs), len(alt.Data))
	}
	size := uint64(len(alt.Data) / (len(rs) / 2))
	var live [][2]uint64
	for _, r := range rs {
		if r.Offset%size != 4 || r.Symbol == nil || r.Symbol.Section != repl {
			continue
		}
		start := r.Symbol.Value + uint64(r.Addend)
		live = append(live, [2]uint64{start, start + uint64(alt.Data[r.Offset-4+size-1])})
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA || s.Info != repl {
			continue
		}
		for _, r := range s.Relocs {
			if !slices.ContainsFunc(live, func(l [2]uint64) bool { return r.Offset >= l[0] && r.Offset < l[1] }) {
				t.Errorf("%s: relocation at %#x against %s is in replacement code no alternative of the output uses (%v)", s.Name, r.Offset, symName(r.Symbol), live)
			}
		}
	}
}
