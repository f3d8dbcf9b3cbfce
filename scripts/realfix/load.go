package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/internal/vmtest/proto"
	"github.com/kelp-project/kelp/ksym"
)

// guestModuleBudget bounds the size of the target modules (with their
// dependencies) put into the guest's initramfs.
const guestModuleBudget = 250 << 20

// badKernelLog are kernel log lines that make a run fail: a patch that
// loads but trips the kernel is not a working patch.
var badKernelLog = []string{"WARNING:", "BUG:", "Oops:", "Unpatched return thunk"}

// loadSteps is the guest script of one module: the modules it patches
// loaded first when the kernel ships them (a patch of a module that is
// not loaded applies when it loads), then kelp load, which waits for the
// transition to complete; then the patch must be enabled, out of
// transition, and every object that is loaded patched. Unload follows,
// so each patch meets the kernel as it booted.
func loadSteps(o Outcome, shipped map[string]bool) []vmtest.Step {
	var pre, post, objs []string
	for _, ob := range o.Objects {
		if ob != "vmlinux" && shipped[ob] {
			pre = append(pre, "modprobe "+ob+" >&2 || echo 'modprobe "+ob+" failed:' \"$(modprobe "+ob+" 2>&1 | tail -n 1)\"")
			post = append(post, "rmmod "+ob+" >&2 || true")
		}
		objs = append(objs, ob)
	}
	lp := "/sys/kernel/livepatch/" + o.Module
	load := strings.Join(append(pre,
		"kelp load /root/"+o.Module+".ko || exit 1",
		`[ "$(cat `+lp+`/enabled)" = 1 ] || { echo not enabled; exit 3; }`,
		`[ "$(cat `+lp+`/transition)" = 0 ] || { echo still in transition; exit 3; }`,
		`for ob in `+strings.Join(objs, " ")+`; do`,
		`  if [ $ob = vmlinux ] || grep -q "^$ob " /proc/modules; then`,
		`    [ "$(cat `+lp+`/$ob/patched)" = 1 ] || { echo "object $ob loaded but not patched"; exit 3; }`,
		`    echo "$ob patched"`,
		`  else echo "$ob not loaded"; fi`,
		`done`,
	), "\n")
	unload := strings.Join(append([]string{"kelp unload " + o.Module + "; rc=$?"}, append(post, "exit $rc")...), "\n")
	return []vmtest.Step{
		{Name: o.Module + " load", Shell: load, Timeout: 3 * time.Minute},
		{Name: o.Module + " unload", Shell: unload, Timeout: 3 * time.Minute},
	}
}

// boot is one guest run of the load: the outcomes (indices into the
// run's outcomes) whose modules it loads, and the modules of the target
// kernel it carries, with their dependencies, in load order.
type boot struct {
	Outcomes []int
	Targets  []string        // modules the patches of this boot patch
	Files    []string        // module files (relative to the modules directory)
	InGuest  map[string]bool // Targets, as a set
	Size     int64           // bytes of Files
}

// planBoots puts every built outcome into a boot, in order, so that the
// modules each boot carries stay within budget: a boot that would grow
// past it is closed and the next outcome starts a new one. So every
// module a patch targets is in the guest with the patch, and the patch is
// proven on it; only a module whose own files exceed the budget is left
// out (its patch is loaded all the same, and applies when that module
// loads). deps gives a module's files in load order; size a file's bytes.
func planBoots(outs []Outcome, shipped map[string]bool, budget int64, deps func(string) ([]string, error), size func(string) int64) ([]boot, []string, error) {
	var boots []boot
	var left []string
	cur := boot{InGuest: map[string]bool{}}
	have := map[string]bool{}
	for i, o := range outs {
		if o.Build != BuildOK {
			continue
		}
		// The files this outcome adds to the current boot, and to an empty one.
		var want []string
		for _, ob := range o.Objects {
			if ob != "vmlinux" && shipped[ob] && !slices.Contains(want, ob) {
				want = append(want, ob)
			}
		}
		adds := func(have map[string]bool) (rels []string, add int64, err error) {
			seen := map[string]bool{}
			for _, ob := range want {
				rs, err := deps(ob)
				if err != nil {
					return nil, 0, err
				}
				for _, r := range rs {
					if !have[r] && !seen[r] {
						seen[r] = true
						rels = append(rels, r)
						add += size(r)
					}
				}
			}
			return rels, add, nil
		}
		rels, add, err := adds(have)
		if err != nil {
			return nil, nil, err
		}
		if cur.Size+add > budget && len(cur.Outcomes) > 0 {
			boots = append(boots, cur)
			cur, have = boot{InGuest: map[string]bool{}}, map[string]bool{}
			if rels, add, err = adds(have); err != nil {
				return nil, nil, err
			}
		}
		cur.Outcomes = append(cur.Outcomes, i)
		if add > budget {
			left = append(left, fmt.Sprintf("%s: its modules %s with dependencies (%d MiB) exceed the guest's budget; not loaded in the guest", o.Module, strings.Join(want, ", "), add>>20))
			continue
		}
		for _, r := range rels {
			have[r] = true
			cur.Files = append(cur.Files, r)
		}
		cur.Size += add
		for _, ob := range want {
			if !cur.InGuest[ob] {
				cur.InGuest[ob] = true
				cur.Targets = append(cur.Targets, ob)
			}
		}
	}
	if len(cur.Outcomes) > 0 {
		boots = append(boots, cur)
	}
	return boots, left, nil
}

// loadAll boots k as many times as the modules the patches target need
// (planBoots) and loads every built module in turn, recording each one's
// result in its outcome; it returns the kernel logs' bad lines.
func loadAll(ctx context.Context, k *testenv.Kernel, outDir string, outs []Outcome) ([]string, int, error) {
	shipped, md, err := shippedModules(k)
	if err != nil {
		return nil, 0, err
	}
	boots, left, err := planBoots(outs, shipped, guestModuleBudget,
		func(ob string) ([]string, error) { return md.LoadOrder([]string{ob}) },
		func(rel string) int64 {
			if st, err := os.Stat(filepath.Join(k.ModulesDir, rel)); err == nil {
				return st.Size()
			}
			return 0
		})
	if err != nil {
		return nil, 0, err
	}
	for _, l := range left {
		progress("  %s", l)
	}
	// Missing files: no soft dependencies.
	softdep, _ := os.ReadFile(filepath.Join(k.ModulesDir, "modules.softdep"))
	alias, _ := os.ReadFile(filepath.Join(k.ModulesDir, "modules.alias"))
	var bad, dmesg []string
	for bi, b := range boots {
		var files []vmtest.File
		var steps []vmtest.Step
		// The soft dependencies of the boot's modules are loaded first and
		// stay: modprobe in the guest does not follow them.
		var names []string
		for _, rel := range b.Files {
			names = append(names, ksym.ModuleName(rel))
		}
		if pre := softDeps(string(softdep), string(alias), shipped, names); len(pre) > 0 {
			rels, err := md.LoadOrder(pre)
			if err != nil {
				return nil, 0, err
			}
			have := map[string]bool{}
			for _, rel := range b.Files {
				have[rel] = true
			}
			for _, rel := range rels {
				if !have[rel] {
					b.Files = append(b.Files, rel)
				}
			}
			steps = append(steps, vmtest.Step{Name: "soft dependencies",
				Shell: "for m in " + strings.Join(pre, " ") + "; do modprobe $m >&2 || echo \"modprobe $m failed\"; done"})
			progress("  soft dependencies loaded first: %s", strings.Join(pre, ", "))
		}
		for _, i := range b.Outcomes {
			o := outs[i]
			files = append(files, vmtest.File{Path: "/root/" + o.Module + ".ko", Host: filepath.Join(outDir, o.Module+".ko")})
			steps = append(steps, loadSteps(o, b.InGuest)...)
		}
		for _, rel := range b.Files {
			files = append(files, vmtest.File{Path: filepath.Join("/lib/modules", k.Release, rel), Host: filepath.Join(k.ModulesDir, rel)})
		}
		steps = append(steps, vmtest.Step{Name: "none left", Shell: "! ls /sys/kernel/livepatch/* 2>/dev/null | grep ."})
		n := len(b.Outcomes)
		progress("booting %s (%d of %d): %d modules to load and unload, %d target modules in the guest (%d MiB with dependencies)",
			k.Release, bi+1, len(boots), n, len(b.Targets), b.Size>>20)
		res, err := vmtest.Run(ctx, vmtest.Config{
			Kernel: k, Files: files, Steps: steps, Memory: "3G",
			Timeout: time.Duration(n)*time.Minute + 5*time.Minute,
			OnStep: func(r vmtest.StepResult) {
				progress("  guest: %s: exit %d %s", r.Name, r.Exit, lastLine(r.Stdout+r.Stderr))
			},
		})
		if err != nil {
			return nil, 0, fmt.Errorf("VM run %d of %d: %w", bi+1, len(boots), err)
		}
		for _, i := range b.Outcomes {
			o := &outs[i]
			l, ok := res.Step(o.Module + " load")
			u, uok := res.Step(o.Module + " unload")
			switch {
			case !ok:
				o.Load, o.LoadLog = "failed", "the load step did not run"
			case l.Exit != 0:
				o.Load, o.LoadLog = "failed", lastLine(l.Stdout+"\n"+l.Stderr+"\n"+l.Error)
			case !uok || u.Exit != 0:
				o.Load, o.LoadLog = "failed", "loaded, but unload failed: "+lastLine(u.Stdout+"\n"+u.Stderr+"\n"+u.Error)
			default:
				o.Load, o.LoadLog = "loaded", strings.Join(strings.Fields(l.Stdout), " ")
			}
		}
		if r, ok := res.Step("none left"); !ok || r.Exit != 0 {
			return nil, 0, fmt.Errorf("VM run %d of %d: livepatches left in the kernel after the run: %s", bi+1, len(boots), r.Stdout)
		}
		for _, line := range strings.Split(res.Dmesg, "\n") {
			if containsAny(line, badKernelLog) {
				bad = append(bad, strings.TrimSpace(line))
			}
		}
		dmesg = append(dmesg, fmt.Sprintf("=== boot %d of %d ===\n%s", bi+1, len(boots), res.Dmesg))
	}
	if len(bad) > 0 {
		os.WriteFile(filepath.Join(filepath.Dir(outDir), "dmesg"), []byte(strings.Join(dmesg, "\n")), 0o644)
	}
	return bad, len(boots), nil
}

// shippedModules are the modules of k's package, by name.
func shippedModules(k *testenv.Kernel) (map[string]bool, *proto.ModuleDeps, error) {
	f, err := os.Open(filepath.Join(k.ModulesDir, "modules.dep"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	md, err := proto.ParseModuleDeps(f)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, nil, err
	}
	shipped := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		mod, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := filepath.Base(mod)
		name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".xz"), ".zst"), ".ko")
		shipped[strings.ReplaceAll(name, "-", "_")] = true
	}
	return shipped, md, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// softDeps are the modules a guest must load before the modules mods
// (names with "_") for them to load: the "pre:" soft dependencies
// modules.softdep lists for each (libcrc32c's crc32c, which modprobe would
// otherwise not load, and libcrc32c fails without), each a module name or
// an alias modules.alias resolves, kept when the kernel's package ships
// the module. They are returned sorted, without duplicates or mods.
func softDeps(softdep, alias string, shipped map[string]bool, mods []string) []string {
	want := map[string]bool{}
	for _, m := range mods {
		want[m] = true
	}
	aliases := map[string][]string{}
	for _, line := range strings.Split(alias, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "alias" {
			aliases[f[1]] = append(aliases[f[1]], strings.ReplaceAll(f[2], "-", "_"))
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(softdep, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "softdep" || !want[strings.ReplaceAll(f[1], "-", "_")] {
			continue
		}
		pre := false
		for _, tok := range f[2:] {
			switch tok {
			case "pre:":
				pre = true
				continue
			case "post:":
				pre = false
				continue
			}
			if !pre {
				continue
			}
			names := []string{strings.ReplaceAll(tok, "-", "_")}
			if !shipped[names[0]] {
				names = aliases[tok]
			}
			for _, n := range names {
				if shipped[n] && !want[n] && !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
