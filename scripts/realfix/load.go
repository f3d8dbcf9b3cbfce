package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/internal/vmtest/proto"
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
			pre = append(pre, "modprobe "+ob+" >&2 || echo 'modprobe "+ob+" failed' >&2")
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

// loadAll boots k once and loads every built module in turn, recording
// each one's result in its outcome; it returns the kernel log's bad lines.
func loadAll(ctx context.Context, k *testenv.Kernel, outDir string, outs []Outcome) ([]string, error) {
	shipped, md, err := shippedModules(k)
	if err != nil {
		return nil, err
	}
	var files []vmtest.File
	var steps []vmtest.Step
	var targets []string
	seen := map[string]bool{}
	n := 0
	// The modules the patches target go into the guest's initramfs with
	// their dependencies, up to a budget the guest's memory holds; a
	// patch of a module left out is loaded all the same (it applies when
	// that module loads) and says so.
	inGuest := map[string]bool{}
	have := map[string]bool{}
	var size int64
	for _, o := range outs {
		if o.Build != BuildOK {
			continue
		}
		n++
		files = append(files, vmtest.File{Path: "/root/" + o.Module + ".ko", Host: filepath.Join(outDir, o.Module+".ko")})
		for _, ob := range o.Objects {
			if ob == "vmlinux" || !shipped[ob] || seen[ob] {
				continue
			}
			seen[ob] = true
			rels, err := md.LoadOrder([]string{ob})
			if err != nil {
				return nil, err
			}
			var add int64
			for _, rel := range rels {
				if st, err := os.Stat(filepath.Join(k.ModulesDir, rel)); err == nil && !have[rel] {
					add += st.Size()
				}
			}
			if size+add > guestModuleBudget {
				progress("  %s: its module %s and dependencies (%d MiB) exceed the guest's budget; not loaded in the guest", o.Module, ob, add>>20)
				continue
			}
			size += add
			inGuest[ob] = true
			targets = append(targets, ob)
			for _, rel := range rels {
				if !have[rel] {
					have[rel] = true
					files = append(files, vmtest.File{Path: filepath.Join("/lib/modules", k.Release, rel), Host: filepath.Join(k.ModulesDir, rel)})
				}
			}
		}
		steps = append(steps, loadSteps(o, inGuest)...)
	}
	if n == 0 {
		return nil, nil
	}
	progress("  %d target modules in the guest (%d MiB with dependencies)", len(targets), size>>20)
	steps = append(steps, vmtest.Step{Name: "none left", Shell: "! ls /sys/kernel/livepatch/* 2>/dev/null | grep ."})
	progress("booting %s: %d modules to load and unload", k.Release, n)
	res, err := vmtest.Run(ctx, vmtest.Config{
		Kernel: k, Files: files, Steps: steps, Memory: "3G",
		Timeout: time.Duration(n)*time.Minute + 5*time.Minute,
		OnStep: func(r vmtest.StepResult) {
			progress("  guest: %s: exit %d %s", r.Name, r.Exit, lastLine(r.Stdout+r.Stderr))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("VM run: %w", err)
	}
	for i := range outs {
		o := &outs[i]
		if o.Build != BuildOK {
			continue
		}
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
		return nil, fmt.Errorf("livepatches left in the kernel after the run: %s", r.Stdout)
	}
	var bad []string
	for _, line := range strings.Split(res.Dmesg, "\n") {
		if containsAny(line, badKernelLog) {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	if len(bad) > 0 {
		os.WriteFile(filepath.Join(filepath.Dir(outDir), "dmesg"), []byte(res.Dmesg), 0o644)
	}
	return bad, nil
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
