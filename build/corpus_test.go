package build_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/internal/vmtest/proto"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
	"github.com/kelp-project/kelp/ktree"
	"github.com/kelp-project/kelp/objdiff"
	"github.com/kelp-project/kelp/refusal"
)

// corpusDir is the integration corpus: X.patch must build, X-FAIL.patch
// must be refused with the reason its "Expect:" header line gives, and
// X-LOADED.test (a guest shell script) must fail before kelp load, pass
// after, and fail again after kelp unload. X-LOADED.c, when there is one,
// is a C program the check runs: it is built statically for the guest as
// /root/X-helper. A "Modules:" header line names
// kernel modules the guest gets under /lib/modules, with their
// dependencies, not loaded: the check modprobes them itself.
const corpusDir = "../testdata/patches"

type corpusPatch struct {
	name   string // X (without -FAIL)
	path   string
	fail   bool
	expect string   // for -FAIL: a substring of the refusal
	loaded string   // X-LOADED.test contents, if any
	helper string   // X-LOADED.c contents, if any
	setup  string   // X-SETUP.sh contents, run in the guest before the checks
	mods   []string // "Modules:" header: modules the guest can modprobe
	module string   // the name kelp build gave the module
	cves   []string // the CVE ids its header names
}

// wantName pins the module name kelp build derives from a patch file
// whose own name is one the kernel uses.
var wantName = map[string]string{"syscall": "kelp_syscall", "module": "kelp_module"}

// wantFunctions pins the exact functions a patch changes, as
// "owner:name,sympos", where that set is what the case proves.
var wantFunctions = map[string][]string{
	// fs/pnode.h and three .c files: every object including the header
	// is compiled twice; do_change_type is inlined in path_mount.
	"header-three-objects": {"vmlinux:change_mnt_propagation,0", "vmlinux:path_mount,0", "vmlinux:show_mountinfo,0"},
	// A fix of one function of rt.c, which build_policy.c includes: the
	// WARNs and BUGs of its other functions name rt.c as the original
	// does (__FILE__), so they are no change.
	"included-c-sched-rt":    {"vmlinux:sched_rr_handler,0"},
	"included-c-sched-debug": {"vmlinux:proc_sched_show_task,0"},
	// One function each, whatever else of its object carries special
	// section entries (other static_cpu_has sites, user accesses).
	"alternatives":            {"vmlinux:proc_pid_arch_status,0"},
	"bug-table":               {"vmlinux:proc_pid_cmdline_read,0"},
	"exception-table":         {"vmlinux:filldir64,0"},
	"jump-label-vmlinux":      {"vmlinux:alarmtimer_do_nsleep,0"},
	"new-global-cross-object": {"vmlinux:int_seq_start,0"},
	"paravirt":                {"vmlinux:begin_new_exec,0"}, // exec_mmap inlined
	"smp-locks":               {"vmlinux:put_task_struct_rcu_user,0"},
	"static-local-kept":       {"vmlinux:do_sys_settimeofday64,0"},
	// get_task_state is inlined into both.
	"static-inline-callers": {"vmlinux:do_task_stat,0", "vmlinux:proc_pid_status,0"},
	"tracepoint":            {"vmlinux:delayed_put_task_struct,0"},
}

// wantUnits pins the objects compiled for a patch whose changed .c file
// is #included by another .c.
var wantUnits = map[string][]string{
	"included-c-sched-rt":    {"kernel/sched/build_policy.o"},
	"included-c-sched-debug": {"kernel/sched/build_utility.o"},
	"included-c-binfmt-elf":  {"fs/binfmt_elf.o", "fs/compat_binfmt_elf.o"},
}

// wantKlp pins livepatch relocation sections and symbols the module must
// have: another module's export reached from a module's code is relocated
// as that module loads.
var wantKlp = map[string][]string{
	"module-export-ext4-crc16":    {".klp.rela.ext4.", ".klp.sym.crc16.crc16,0"},
	"module-export-zram-zsmalloc": {".klp.rela.zram.", ".klp.sym.zsmalloc.zs_huge_class_size,0"},
}

// wantImportNS pins the symbol namespaces a module imports.
var wantImportNS = map[string][]string{
	"module-export-ext4-crc16": {"DMA_BUF"},
	"import-ns-swaps":          {"DMA_BUF"},
}

// wantSpecial pins, per patch, how many entries of a special section the
// report (NAME.json) says the module keeps, summed over its units.
var wantSpecial = map[string]map[string]int{
	// static_call(pv_steal_clock): one call site whose key, in vmlinux,
	// is reached through a livepatch relocation.
	"static-call": {".static_call_sites": 1},
	// cpu_feature_enabled: a static_cpu_has site, two entries.
	"alternatives": {".altinstructions": 2},
	// filldir64's user accesses: STAC/CLAC alternatives and exception
	// table entries.
	"exception-table": {"__ex_table": 9, ".altinstructions": 5},
	// refcount_dec_and_test's LOCK prefix and the added WARN_ON_ONCE.
	"smp-locks": {".smp_locks": 1, "__bug_table": 1},
	// freezing(): a jump label on freezer_active, an exported key.
	"jump-label-vmlinux": {"__jump_table": 1},
	// BUG_ON(*pos < 0) and the inlined code's.
	"bug-table": {"__bug_table": 2},
	// exec_mmap's local_irq_disable/enable: paravirt call sites (with
	// begin_new_exec's own).
	"paravirt": {".parainstructions": 3},
	// trace_sched_process_free: its jump label and static call sites.
	"tracepoint": {"__jump_table": 1, ".static_call_sites": 2},
}

// wantIgnored lists, per patch, differences the report (NAME.json) must
// name as deliberately left out: "what|text of the reason".
var wantIgnored = map[string][]string{
	// trace_nullb_report_zones: its key lives in the null_blk module.
	"module-tracepoint": {
		"tracepoint|tracepoint nullb_report_zones is inert",
		"static call site|key __SCK__tp_func_nullb_report_zones lives in module null_blk",
	},
}

// lineRange is the lines [start, end) of a file one hunk of a patch replaces.
type lineRange struct {
	patch      string
	start, end int
}

// readCorpus reads the corpus; only, when given, names the cases to keep.
func readCorpus(t *testing.T, only []string) []corpusPatch {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.patch"))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus %s: %v", corpusDir, err)
	}
	sort.Strings(files)
	var out []corpusPatch
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".patch")
		if only != nil && !slices.Contains(only, base) {
			continue
		}
		c := corpusPatch{name: strings.TrimSuffix(base, "-FAIL"), path: f, fail: strings.HasSuffix(base, "-FAIL")}
		if c.fail {
			c.expect = header(t, f, "Expect:")
			if c.expect == "" {
				t.Fatalf("%s: no Expect: line", f)
			}
		}
		c.mods = strings.Fields(header(t, f, "Modules:"))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c.cves = build.ParseHeader(data).CVEs
		c.loaded = optionalFile(t, c.name+"-LOADED.test")
		c.helper = optionalFile(t, c.name+"-LOADED.c")
		c.setup = optionalFile(t, c.name+"-SETUP.sh")
		if c.helper != "" && c.loaded == "" {
			t.Fatalf("%s-LOADED.c: no %s-LOADED.test runs it", c.name, c.name)
		}
		if !c.fail && c.loaded == "" {
			t.Errorf("%s: a buildable patch without a behaviour check (%s-LOADED.test)", base, c.name)
		}
		out = append(out, c)
	}
	return out
}

// optionalFile returns the contents of the corpus file name, "" when
// there is none.
func optionalFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// header returns the value of the first "key value" line before the diff.
func header(t *testing.T, path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "--- ") {
			break
		}
		if v, ok := strings.CutPrefix(l, key); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func buildOptions(t *testing.T, k *testenv.Kernel, out string, patches ...string) build.Options {
	t.Helper()
	topts, err := k.TreeOptions()
	if err != nil {
		testenv.MissingOr(t, err)
	}
	return build.Options{
		Patches:    patches,
		Tree:       topts,
		Symbols:    ksymtest.KallsymsPath(t, k),
		ModulesDir: k.ModulesDir,
		OutDir:     out,
	}
}

// TestCorpus builds every patch of the corpus, checks each refusal, then
// boots the kernel once: each LOADED check fails, passes under kelp load,
// fails after kelp unload; then all buildable patches combined in one
// module pass every check at once and unload cleanly.
func TestCorpus(t *testing.T) {
	runCorpus(t, testenv.RequireKernel(t), nil)
}

// corpus612 are the cases TestCorpus612 runs on Debian 13's 6.12 kernel:
// vmlinux functions of fs/proc, kernel/ and the syscall wrapper, a
// module shipped compressed (.ko.xz), new data and callbacks, and
// refusals that do not depend on the release (a new export is an
// .export_symbol entry from 6.5 on).
var corpus612 = []string{
	"cmdline-string", "meminfo-string", "syscall-uname", "module-dummy", "string-literal",
	"callbacks-kpatch", "new-static-data",
	"asm-FAIL", "line-only-FAIL", "init-function-FAIL", "new-export-FAIL", "btf-ids-removed-FAIL", "pci-quirk-iommu-FAIL",
}

// TestCorpus612 runs corpus612 against Debian 13's 6.12 kernel, built in
// its trixie build root with gcc-14 and booted in the VM.
func TestCorpus612(t *testing.T) {
	k := testenv.RequireKernelOf(t, func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") })
	runCorpus(t, k, corpus612)
}

// corpusCloud are the cases run on each release's cloud flavour: vmlinux
// functions of two subsystems (fs/proc, the uname syscall).
var corpusCloud = []string{"cmdline-string", "syscall-uname"}

// TestCorpusCloud builds and checks corpusCloud on the cloud flavour of
// Debian 12 (6.1) and of Debian 13 (6.12): a smaller config than the
// generic one, with the same source.
func TestCorpusCloud(t *testing.T) {
	t.Run("6.1", func(t *testing.T) {
		runCorpus(t, testenv.RequireKernelOf(t, testenv.Cloud61Kernel), corpusCloud)
	})
	t.Run("6.12", func(t *testing.T) {
		k := testenv.RequireKernelOf(t, func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("cloud-amd64") })
		runCorpus(t, k, corpusCloud)
	})
}

func runCorpus(t *testing.T, k *testenv.Kernel, only []string) {
	ctx := context.Background()
	corpus := readCorpus(t, only)
	if only != nil && len(corpus) != len(only) {
		t.Fatalf("corpus: %d of the %d cases named found", len(corpus), len(only))
	}
	out := t.TempDir()
	var built []corpusPatch
	var all []string
	touched := map[string][]lineRange{} // file → the lines each patch changes
	for i, c := range corpus {
		ran := false // a -run pattern naming other cases skips this one
		ok := t.Run(filepath.Base(c.path), func(t *testing.T) {
			ran = true
			// The name derived from the file, as a user gets it.
			opts := buildOptions(t, k, out, c.path)
			res, err := build.Build(ctx, opts)
			if c.fail {
				if err == nil {
					t.Fatalf("built %s; want a refusal containing %q", res.Module, c.expect)
				}
				if !strings.Contains(err.Error(), c.expect) {
					t.Fatalf("error %q; want one containing %q", err, c.expect)
				}
				var re *refusal.Error
				if !errors.As(err, &re) && !errors.Is(err, build.ErrNoChange) {
					t.Errorf("error %q is not a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			corpus[i].module = res.Name
			if want := wantName[c.name]; want != "" && res.Name != want {
				t.Errorf("module name %s; want %s", res.Name, want)
			}
			if _, err := os.Stat(res.Module); err != nil {
				t.Fatal(err)
			}
			if len(res.Functions) == 0 && !callbacksOnly(res) {
				t.Errorf("no function patched")
			}
			if strings.HasPrefix(c.name, "callbacks-only") && (len(res.Functions) != 0 || !callbacksOnly(res)) {
				t.Errorf("callbacks-only patch: functions %q, assembly %+v", res.Functions, res.Assembly)
			}
			if want, ok := wantFunctions[c.name]; ok && strings.Join(res.Functions, " ") != strings.Join(want, " ") {
				t.Errorf("functions %q; want %q", res.Functions, want)
			}
			if want, ok := wantSpecial[c.name]; ok {
				checkSpecial(t, res.Report, want)
			}
			if want, ok := wantIgnored[c.name]; ok {
				checkIgnored(t, res.Report, want)
			}
			if want, ok := wantUnits[c.name]; ok {
				var got []string
				for _, u := range res.Units {
					got = append(got, u.Unit)
				}
				sort.Strings(got)
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("units %q; want %q", got, want)
				}
			}
			if want, ok := wantKlp[c.name]; ok {
				checkKlp(t, res.Module, want)
			}
			if want, ok := wantImportNS[c.name]; ok {
				m, err := kmod.Open(res.Module)
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Info["import_ns"]; strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("import_ns %q; want %q", got, want)
				}
			}
		})
		if !ok || !ran || c.fail {
			continue
		}
		c = corpus[i]
		built = append(built, c)
		// Every buildable patch goes into the combined module, so no two
		// may change the same lines.
		data, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ktree.ParsePatch(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Files {
			for _, h := range f.Hunks {
				for _, o := range touched[f.Path] {
					if h.Start < o.end && o.start < h.Start+len(h.Old) {
						t.Errorf("combined module: %s and %s change the same lines of %s (%d-%d)", o.patch, c.name, f.Path, h.Start+1, h.Start+len(h.Old))
					}
				}
			}
			for _, h := range f.Hunks {
				touched[f.Path] = append(touched[f.Path], lineRange{c.name, h.Start, h.Start + len(h.Old)})
			}
		}
		all = append(all, c.path)
	}
	if t.Failed() || len(all) == 0 { // only refusals selected: nothing to load
		return
	}
	opts := buildOptions(t, k, out, all...)
	opts.Name = "corpus_all"
	if _, err := build.Build(ctx, opts); err != nil {
		t.Fatalf("combined module: %v", err)
	}
	runLoadedChecks(t, k, out, built)
}

// checkKlp checks that the module has a livepatch relocation section
// whose name starts with want[0] and relocations against the livepatch
// symbol want[1] in it.
func checkKlp(t *testing.T, ko string, want []string) {
	t.Helper()
	f, err := elfobj.ReadFile(ko)
	if err != nil {
		t.Fatal(err)
	}
	var secs []string
	found := false
	for _, sec := range f.Sections {
		if !sec.IsLivepatchRelocs() {
			continue
		}
		secs = append(secs, sec.Name)
		for _, r := range sec.Relocs {
			if strings.HasPrefix(sec.Name, want[0]) && r.Symbol != nil && r.Symbol.Name == want[1] && r.Symbol.IsLivepatch() {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("%s: no relocation against %s in a %s* section (livepatch sections: %q)", filepath.Base(ko), want[1], want[0], secs)
	}
}

// callbacksOnly tells whether the module has callbacks and no function.
func callbacksOnly(res *build.Result) bool {
	if res.Assembly == nil || len(res.Assembly.Objects) == 0 {
		return false
	}
	for _, o := range res.Assembly.Objects {
		if len(o.Funcs) != 0 || len(o.Callbacks) == 0 {
			return false
		}
	}
	return true
}

// checkSpecial compares the special section entries a report keeps with
// want.
func checkSpecial(t *testing.T, report string, want map[string]int) {
	t.Helper()
	rep := readReport(t, report)
	got := map[string]int{}
	for _, u := range rep.Units {
		for _, s := range u.Special {
			got[s.Section] += s.Kept
		}
	}
	for sec, n := range want {
		if got[sec] != n {
			t.Errorf("%s: %d %s entries kept; want %d", filepath.Base(report), got[sec], sec, n)
		}
	}
}

// unitReports is the part of a build report (NAME.json) the corpus checks.
type unitReports struct {
	Units []*objdiff.Report `json:"units"`
}

// readReport reads the per-unit reports of a build report (NAME.json).
func readReport(t *testing.T, report string) unitReports {
	t.Helper()
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep unitReports
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("%s: %v", report, err)
	}
	return rep
}

// checkIgnored checks that the report lists each wanted ignored
// difference ("what|text of the reason").
func checkIgnored(t *testing.T, report string, want []string) {
	t.Helper()
	rep := readReport(t, report)
	var got []string
	for _, u := range rep.Units {
		for _, ig := range u.Ignored {
			got = append(got, ig.What+"|"+ig.Reason)
		}
	}
	for _, w := range want {
		what, text, _ := strings.Cut(w, "|")
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, what+"|") && strings.Contains(g, text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no ignored %q among %q", filepath.Base(report), w, got)
		}
	}
}

// moduleFiles returns the guest files of the named modules and their
// dependencies, where modprobe finds them.
func moduleFiles(t *testing.T, k *testenv.Kernel, names []string) []vmtest.File {
	t.Helper()
	f, err := os.Open(filepath.Join(k.ModulesDir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md, err := proto.ParseModuleDeps(f)
	if err != nil {
		t.Fatal(err)
	}
	rels, err := md.LoadOrder(names)
	if err != nil {
		t.Fatal(err)
	}
	var files []vmtest.File
	for _, rel := range rels {
		files = append(files, vmtest.File{Path: filepath.Join("/lib/modules", k.Release, rel), Host: filepath.Join(k.ModulesDir, rel)})
	}
	return files
}

func runLoadedChecks(t *testing.T, k *testenv.Kernel, out string, built []corpusPatch) {
	ctx := context.Background()
	var files []vmtest.File
	var mods []string
	var steps []vmtest.Step
	check := func(c corpusPatch, phase string) {
		steps = append(steps, vmtest.Step{Name: c.name + " " + phase, Shell: "sh /root/" + c.name + "-LOADED.test"})
	}
	var checked []corpusPatch
	for _, c := range built {
		name := c.module
		files = append(files, vmtest.File{Path: "/root/" + name + ".ko", Host: filepath.Join(out, name+".ko")})
		mods = append(mods, c.mods...)
		if c.loaded == "" {
			continue
		}
		checked = append(checked, c)
		files = append(files, vmtest.File{Path: "/root/" + c.name + "-LOADED.test", Data: []byte(c.loaded)})
		if c.helper != "" {
			bin, err := k.BuildProgram(ctx, c.name+"-helper", []byte(c.helper))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, vmtest.File{Path: "/root/" + c.name + "-helper", Host: bin, Mode: 0o755})
		}
		if c.setup != "" {
			files = append(files, vmtest.File{Path: "/root/" + c.name + "-SETUP.sh", Data: []byte(c.setup)})
		}
	}
	files = append(files, vmtest.File{Path: "/root/corpus_all.ko", Host: filepath.Join(out, "corpus_all.ko")})
	if len(mods) > 0 {
		files = append(files, moduleFiles(t, k, mods)...)
	}
	for _, c := range checked {
		name := c.module
		if c.setup != "" {
			steps = append(steps, vmtest.Step{Name: c.name + " setup", Shell: "sh /root/" + c.name + "-SETUP.sh"})
		}
		check(c, "before")
		load, unload := "kelp load /root/"+name+".ko", "kelp unload "+name
		if len(c.cves) > 0 {
			// A patch that says what it fixes goes the way a fleet ships
			// it: installed (its CVE ids are then not fixed, only
			// installed), then loaded by name.
			steps = append(steps, vmtest.Step{Name: c.name + " install", Shell: "kelp install /root/" + name + ".ko >&2 && kelp status --json"})
			load = "kelp load " + name
			unload += " && kelp uninstall " + name
		}
		steps = append(steps, vmtest.Step{Name: c.name + " load", Shell: load})
		check(c, "loaded")
		steps = append(steps, vmtest.Step{Name: c.name + " unload", Shell: unload})
		check(c, "after")
	}
	// A livepatch module under a name built-in code uses is refused in
	// pre-flight, in one line, before the kernel's bare EINVAL.
	for _, name := range takenNames {
		files = append(files, vmtest.File{Path: "/root/taken/" + name + ".ko", Host: testenv.FakeModule(t, name, k.Release, true)})
		steps = append(steps, vmtest.Step{Name: "name-taken " + name,
			Shell: "out=$(kelp load /root/taken/" + name + ".ko 2>&1); rc=$?; echo \"$out\" | tail -n 1; [ $rc = 1 ] && ! grep -q '^" + name + " ' /proc/modules"})
	}
	// kelp symbols names the kernel it runs on in the dump's first line.
	steps = append(steps, vmtest.Step{Name: "symbols header", Shell: "kelp symbols | head -n 1"})
	// An atomic-replace patch takes over: once patch b replaced patch a,
	// only b's CVE ids are fixed.
	var withCVEs []corpusPatch
	for _, c := range built {
		if len(c.cves) > 0 {
			withCVEs = append(withCVEs, c)
		}
	}
	if len(withCVEs) >= 2 {
		a, b := withCVEs[0].module, withCVEs[1].module
		steps = append(steps, vmtest.Step{Name: "replace status",
			Shell: "kelp load /root/" + a + ".ko >&2 && kelp load /root/" + b + ".ko >&2 && kelp status --json; rc=$?; kelp unload " + b + " >&2 && kelp unload " + a + " >&2 && exit $rc"})
	}
	steps = append(steps, vmtest.Step{Name: "all load", Shell: "kelp load /root/corpus_all.ko && kelp list"})
	for _, c := range checked {
		check(c, "all")
	}
	// The combined module fixes what its patches' headers name, together.
	var cves []string
	for _, c := range built {
		cves = append(cves, c.cves...)
	}
	cves = build.SortCVEs(cves)
	steps = append(steps, vmtest.Step{Name: "all status", Shell: "kelp status --json"})
	steps = append(steps,
		vmtest.Step{Name: "all unload", Shell: "kelp unload corpus_all && ! grep -q corpus_all /proc/modules"},
		vmtest.Step{Name: "unpatched", Shell: "! ls /sys/kernel/livepatch/* 2>/dev/null | grep ."},
	)
	res := vmtest.RunT(t, vmtest.Config{Kernel: k, Files: files, Steps: steps, Timeout: 10 * 60e9})
	want := map[string]int{"before": 1, "loaded": 0, "after": 1, "all": 0}
	for _, s := range steps {
		r, ok := res.Step(s.Name)
		if !ok {
			t.Errorf("%s: did not run", s.Name)
			continue
		}
		phase := s.Name[strings.LastIndexByte(s.Name, ' ')+1:]
		w, isCheck := want[phase]
		if !isCheck {
			w = 0
		}
		if (r.Exit == 0) != (w == 0) {
			t.Errorf("%s: exit %d, want %s\n%s%s", s.Name, r.Exit, map[bool]string{true: "success", false: "failure"}[w == 0], r.Stdout, r.Stderr)
		}
	}
	// A patch that works but trips the kernel (an unpatched return thunk,
	// a missing ORC entry) is not a working patch.
	for _, bad := range []string{"WARNING:", "BUG:", "Oops:", "Unpatched return thunk"} {
		if strings.Contains(res.Dmesg, bad) {
			t.Errorf("kernel log has %q", bad)
		}
	}
	for _, name := range takenNames {
		r, ok := res.Step("name-taken " + name)
		if want := "module name " + name + " is taken by code built into the kernel (/sys/module/" + name + " exists)"; ok && !strings.Contains(r.Stdout, want) {
			t.Errorf("kelp load of a module named %s: last line %q; want %q", name, r.Stdout, want)
		}
	}
	for _, c := range checked {
		if r, ok := res.Step(c.name + " install"); ok && r.Exit == 0 {
			checkInstalled(t, c, r.Stdout)
		}
	}
	if r, ok := res.Step("all status"); ok && r.Exit == 0 {
		checkFixed(t, "corpus_all", r.Stdout, cves)
	}
	if r, ok := res.Step("replace status"); ok && r.Exit == 0 {
		checkFixed(t, withCVEs[1].module, r.Stdout, withCVEs[1].cves)
	}
	if r, ok := res.Step("symbols header"); ok {
		h, found, err := ksym.ReadDumpHeader([]byte(r.Stdout))
		if err != nil || !found || h.Release != k.Release || !buildIDRE.MatchString(h.BuildID) {
			t.Errorf("kelp symbols header %q: %+v, %v, %v; want release %s and a build id", r.Stdout, h, found, err, k.Release)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprintf("dmesg:\n%s", res.Dmesg))
	}
}

// checkFixed wants kelp status --json to show one loaded patch, name,
// fixing the CVE ids cves, and nothing else fixed.
func checkFixed(t *testing.T, name, status string, cves []string) {
	t.Helper()
	var st struct {
		Loaded []struct {
			Name        string   `json:"name"`
			Description string   `json:"description"`
			CVEs        []string `json:"cves"`
		} `json:"loaded"`
		FixedCVEs []string `json:"fixed_cves"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Errorf("kelp status --json: %v\n%s", err, status)
		return
	}
	if !slices.Equal(st.FixedCVEs, cves) || len(st.Loaded) != 1 || st.Loaded[0].Name != name || !slices.Equal(st.Loaded[0].CVEs, cves) || st.Loaded[0].Description == "" {
		t.Errorf("kelp status --json with %s loaded: fixed_cves %q, loaded %+v; want %q, the CVE ids its patches' headers name, and a description", name, st.FixedCVEs, st.Loaded, cves)
	}
}

// checkInstalled wants kelp status --json, with c's module installed and
// nothing loaded, to list it as not loaded and its CVE ids as not fixed.
func checkInstalled(t *testing.T, c corpusPatch, status string) {
	t.Helper()
	var st struct {
		Loaded        []any    `json:"loaded"`
		FixedCVEs     []string `json:"fixed_cves"`
		NotLoaded     []string `json:"not_loaded"`
		NotLoadedCVEs []string `json:"not_loaded_cves"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Errorf("kelp status --json: %v\n%s", err, status)
		return
	}
	if len(st.Loaded) != 0 || len(st.FixedCVEs) != 0 || !slices.Equal(st.NotLoaded, []string{c.module}) || !slices.Equal(st.NotLoadedCVEs, c.cves) {
		t.Errorf("kelp status --json with %s installed, not loaded: loaded %v, fixed_cves %q, not_loaded %q, not_loaded_cves %q; want none loaded or fixed, %s and %q not loaded", c.module, st.Loaded, st.FixedCVEs, st.NotLoaded, st.NotLoadedCVEs, c.module, c.cves)
	}
}

// takenNames are names built-in code registers under /sys/module.
var takenNames = []string{"module", "printk"}

var buildIDRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
