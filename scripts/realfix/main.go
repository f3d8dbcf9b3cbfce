// Command realfix builds kelp's real-fix corpus and measures it: every
// .c file that changed between two Debian linux-source-6.1 versions
// (1..40 changed lines, amd64 kernel code) becomes one patch, built with
// kelp for the older version's kernel, and every module that builds is
// loaded in one boot of that kernel under QEMU. The results, joined with
// the hand classification of refusals (classes.tsv), become
// docs/corpus.md.
//
//	go run ./scripts/realfix            # all of it (make corpus)
//	go run ./scripts/realfix -every 3   # every third patch, by path
//
// Progress goes to stderr. The run fails on an unclassified refusal, a
// kernel log with a warning, BUG or oops, or a failed stage.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/ktree"
)

type config struct {
	oldVer, newVer, kernel string
	every                  int
	only, rebuild          string
	reuse, rejoin          bool
	classes, table         string
	work                   string
}

func main() {
	var c config
	flag.StringVar(&c.oldVer, "old", "6.1.170-3", "Debian version of linux-source-6.1 the fixes apply to (the target kernel's)")
	flag.StringVar(&c.newVer, "new", "6.1.176-1", "Debian version of linux-source-6.1 the fixes come from")
	flag.StringVar(&c.kernel, "kernel", "6.1.0-47-amd64", "target kernel release, a linux-image of version -old")
	flag.IntVar(&c.every, "every", 1, "build every Nth patch (sorted by path), a deterministic subset")
	flag.StringVar(&c.only, "only", "", "build only patches of files matching this regular expression")
	flag.BoolVar(&c.reuse, "reuse", false, "reuse the build results of an earlier run for unchanged patches (the VM load always runs)")
	flag.StringVar(&c.rebuild, "rebuild", "", "with -reuse: build again the patches of files matching this regular expression (after a change of kelp that concerns them)")
	flag.BoolVar(&c.rejoin, "rejoin", false, "only join the last run's results with the classification again and rewrite the table")
	flag.StringVar(&c.classes, "classes", "scripts/realfix/classes.tsv", "hand classification of refusals")
	flag.StringVar(&c.table, "table", "docs/corpus.md", "result table to write")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "realfix:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "realfix: "+format+"\n", args...)
}

func run(ctx context.Context, c config) error {
	start := time.Now()
	kelp := kelpVersion()
	if c.every < 1 {
		return fmt.Errorf("-every %d: want 1 or more", c.every)
	}
	var only *regexp.Regexp
	if c.only != "" {
		var err error
		if only, err = regexp.Compile(c.only); err != nil {
			return fmt.Errorf("-only: %w", err)
		}
	}
	var rebuild *regexp.Regexp
	if c.rebuild != "" {
		var err error
		if rebuild, err = regexp.Compile(c.rebuild); err != nil {
			return fmt.Errorf("-rebuild: %w", err)
		}
	}
	f, err := os.Open(c.classes)
	if err != nil {
		return err
	}
	classes, err := ReadClasses(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", c.classes, err)
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		return err
	}
	kelpCache := filepath.Dir(cache)
	c.work = filepath.Join(kelpCache, "realfix")

	runPath := filepath.Join(c.work, "run.json")
	if c.rejoin {
		var r lastRun
		data, err := os.ReadFile(runPath)
		if err != nil {
			return fmt.Errorf("-rejoin: %w", err)
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("-rejoin: %s: %w", runPath, err)
		}
		return finish(c, classes, r)
	}

	// Sources.
	var tars [2]string
	for i, v := range []string{c.oldVer, c.newVer} {
		if tars[i], err = ktree.FetchSource(ctx, "6.1", v, filepath.Join(kelpCache, "sources"), func(s string) { progress("%s", s) }); err != nil {
			return err
		}
	}

	// Patches.
	t := time.Now()
	progress("comparing the .c files of %s and %s", c.oldVer, c.newVer)
	sel, err := Select(xzTar(tars[0]), xzTar(tars[1]), c.oldVer, c.newVer)
	if err != nil {
		return err
	}
	progress("%d changed .c files of amd64 kernel code with 1-%d changed lines, %d with more, %d of other architectures or userspace; %d added, %d removed (%s)",
		len(sel.Patches), MaxChanged, len(sel.TooLarge), len(sel.OtherArch), len(sel.Added), len(sel.Removed), since(t))
	patchDir := filepath.Join(c.work, "patches")
	if err := os.RemoveAll(patchDir); err != nil {
		return err
	}
	if err := os.MkdirAll(patchDir, 0o755); err != nil {
		return err
	}
	var chosen []Outcome
	for i, p := range sel.Patches {
		path := filepath.Join(patchDir, patchFileName(p.File))
		if err := os.WriteFile(path, []byte(p.Text), 0o644); err != nil {
			return err
		}
		if i%c.every != 0 || (only != nil && !only.MatchString(p.File)) {
			continue
		}
		sum := sha256.Sum256([]byte(p.Text))
		chosen = append(chosen, Outcome{File: p.File, Changed: p.Changed, Patch: path, SHA256: hex.EncodeToString(sum[:]), Module: moduleName(i, p.File)})
	}
	progress("%d patches in %s, %d chosen", len(sel.Patches), patchDir, len(chosen))

	// The target kernel.
	k, err := targetKernel(ctx, cache, c.kernel, c.oldVer, tars[0])
	if err != nil {
		return err
	}
	t = time.Now()
	progress("kallsyms of %s (a boot of it the first time)", k.Release)
	syms, err := vmtest.Kallsyms(ctx, k)
	if err != nil {
		return err
	}
	progress("kallsyms %s (%s)", syms, since(t))

	// Builds.
	outDir := filepath.Join(c.work, "out")
	earlier := map[string]Outcome{}
	resultsPath := filepath.Join(c.work, "results.json")
	if c.reuse {
		var prev []Outcome
		if data, err := os.ReadFile(resultsPath); err == nil && json.Unmarshal(data, &prev) == nil {
			for _, o := range prev {
				earlier[o.SHA256] = o
			}
		}
	} else if err := os.RemoveAll(outDir); err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	t = time.Now()
	for i := range chosen {
		o := &chosen[i]
		if e, ok := earlier[o.SHA256]; ok && e.Module == o.Module && (e.Build != BuildOK || fileExists(filepath.Join(outDir, o.Module+".ko"))) &&
			(rebuild == nil || !rebuild.MatchString(o.File)) {
			*o = e
			o.Load, o.LoadLog = "", ""
			progress("[%d/%d] %s: %s (earlier run)", i+1, len(chosen), o.File, o.Build)
			continue
		}
		buildOne(ctx, k, syms, tars[0], outDir, o)
		o.Kelp = kelp
		progress("[%d/%d] %s: %s in %.1fs %s", i+1, len(chosen), o.File, o.Build, o.Seconds, o.Message)
	}
	progress("builds done (%s)", since(t))

	// What the config builds: kbuild's word, not kelp's.
	t = time.Now()
	tree, err := ktree.Open(ctx, treeOptions(k, tars[0]))
	if err != nil {
		return err
	}
	objs, err := tree.ConfiguredObjects(ctx)
	if err != nil {
		return err
	}
	for i := range chosen {
		chosen[i].Configured = configured(tree.Dir, chosen[i].File, objs)
	}
	progress("%d objects in %s's config (%s)", len(objs), k.Release, since(t))
	if err := writeResults(resultsPath, chosen); err != nil {
		return err
	}

	// The boots: every module that built, loaded and unloaded in turn.
	t = time.Now()
	dmesgBad, boots, err := loadAll(ctx, k, outDir, chosen)
	if err != nil {
		return err
	}
	progress("VM load done (%s)", since(t))
	if err := writeResults(resultsPath, chosen); err != nil {
		return err
	}

	r := lastRun{Outcomes: chosen, Info: TableInfo{
		Old: c.oldVer, New: c.newVer, Kernel: c.kernel, Every: c.every, Only: c.only, Kelp: kelp,
		Patches: len(sel.Patches), TooLarge: len(sel.TooLarge), OtherArch: len(sel.OtherArch),
		Added: len(sel.Added), Removed: len(sel.Removed), DmesgBad: dmesgBad, Boots: boots,
		Elapsed: time.Since(start).Round(time.Second),
	}}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(runPath, data, 0o644); err != nil {
		return err
	}
	return finish(c, classes, r)
}

// lastRun is what a run keeps for -rejoin.
type lastRun struct {
	Outcomes []Outcome
	Info     TableInfo
}

// finish joins a run's outcomes with the classification, writes the
// table and says whether the run passes.
func finish(c config, classes map[string]HandClass, r lastRun) error {
	rows, stale := Join(r.Outcomes, classes)
	s := Summarize(rows)
	if err := os.WriteFile(c.table, []byte(Table(rows, s, r.Info)), 0o644); err != nil {
		return err
	}
	progress("%s: %d fixes, %d compile alone, %d built+loaded (%.1f%%), %d refused with a true reason, %d by a kelp limitation, %d failed to load, %d unclassified",
		c.table, s.Total, s.CompileAlone, s.ByClass[ClassLoaded], s.Rate(), s.ByClass[ClassTrue], s.ByClass[ClassLimitation], s.ByClass[ClassLoadFailed], s.ByClass[ClassUnclassfied])
	heads := 0
	for _, o := range r.Outcomes {
		if len(o.Heads) > 0 {
			heads++
		}
	}
	progress("%d of the builds compiled a patched copy after a precompiled head", heads)
	var fail []string
	if n := s.ByClass[ClassUnclassfied]; n > 0 {
		for _, r := range rows {
			if r.Class == ClassUnclassfied {
				progress("unclassified: %s: %s", r.File, r.Message)
			}
		}
		fail = append(fail, fmt.Sprintf("%d unclassified refusals (add them to %s)", n, c.classes))
	}
	if r.Info.Every == 1 && r.Info.Only == "" && len(stale) > 0 {
		fail = append(fail, fmt.Sprintf("%s classifies files that are no longer refused: %s", c.classes, strings.Join(stale, ", ")))
	}
	if bad := r.Info.DmesgBad; len(bad) > 0 {
		fail = append(fail, fmt.Sprintf("the kernel log has %d warning, BUG or oops lines, the first: %s", len(bad), bad[0]))
	}
	for _, row := range rows {
		if row.Class == ClassNotBuilt && row.Build == BuildOK {
			fail = append(fail, row.File+": "+row.Reason)
		}
	}
	if len(fail) > 0 {
		return errors.New(strings.Join(fail, "; "))
	}
	return nil
}

// kelpVersion names the kelp source this program was built from: the
// commit go build recorded, or the working tree's when it recorded none
// (go run), "+changes" when the tree had changes.
func kelpVersion() string {
	rev, modified := "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "unknown" {
		// go run records no commit: the tree it compiled from says.
		if out, err := exec.Command("git", "describe", "--always", "--dirty=+changes").Output(); err == nil {
			return strings.TrimSpace(string(out))
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "+changes"
	}
	return rev
}

// writeResults keeps the outcomes (for -reuse, and to read them).
func writeResults(path string, outs []Outcome) error {
	data, err := json.MarshalIndent(outs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// targetKernel is the kernel the fixes are built for and loaded into: its
// image package unpacked into the test cache (images/<release>), its
// headers installed on the host with apt (kelp build links modules
// against them), its source the linux-source of the same version.
func targetKernel(ctx context.Context, cache, rel, ver, sourceTar string) (*testenv.Kernel, error) {
	headers := filepath.Join("/usr/src", "linux-headers-"+rel)
	if !fileExists(filepath.Join(headers, "Makefile")) {
		progress("installing linux-headers-%s=%s with apt-get", rel, ver)
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "linux-headers-"+rel+"="+ver)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("apt-get install linux-headers-%s=%s: %w", rel, ver, err)
		}
	}
	dir := filepath.Join(cache, "images", rel)
	_, err := testenv.Cached(dir+"-"+ver, func(tmp string) error {
		progress("unpacking linux-image-%s=%s into %s", rel, ver, dir+"-"+ver)
		get := exec.CommandContext(ctx, "apt-get", "download", "-q", "linux-image-"+rel+"="+ver)
		get.Dir = tmp
		if out, err := get.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get download linux-image-%s=%s: %v: %s", rel, ver, err, out)
		}
		debs, _ := filepath.Glob(filepath.Join(tmp, "linux-image-*.deb"))
		if len(debs) != 1 {
			return fmt.Errorf("apt-get download linux-image-%s=%s wrote %d packages", rel, ver, len(debs))
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, out)
		}
		if out, err := exec.CommandContext(ctx, "depmod", "-b", tmp, rel).CombinedOutput(); err != nil {
			return fmt.Errorf("depmod %s: %v: %s", rel, err, out)
		}
		return os.Remove(debs[0])
	})
	if err != nil {
		return nil, err
	}
	dir += "-" + ver
	k := &testenv.Kernel{
		Release:    rel,
		Image:      filepath.Join(dir, "boot", "vmlinuz-"+rel),
		Config:     filepath.Join(dir, "boot", "config-"+rel),
		ModulesDir: filepath.Join(dir, "lib", "modules", rel),
		Headers:    headers,
		SourceTar:  sourceTar,
	}
	for _, p := range []string{k.Image, k.Config, filepath.Join(k.ModulesDir, "modules.dep")} {
		if !fileExists(p) {
			return nil, fmt.Errorf("%s missing from the unpacked linux-image-%s=%s", p, rel, ver)
		}
	}
	return k, nil
}

// treeOptions are the source tree options of every build: the target's
// config and headers, the linux-source of its version.
func treeOptions(k *testenv.Kernel, sourceTar string) ktree.Options {
	return ktree.Options{
		Release:   k.Release,
		SourceTar: sourceTar,
		Config:    k.Config,
		Headers:   k.Headers,
		Step:      func(s string) { progress("  %s", s) },
	}
}

// configured tells whether the config builds file: its object is one
// kbuild compiles, or a .c file beside it whose object kbuild compiles
// #includes it (kernel/sched/build_policy.c includes rt.c).
func configured(treeDir, file string, objs map[string]bool) bool {
	if objs[strings.TrimSuffix(file, ".c")+".o"] {
		return true
	}
	dir := filepath.Dir(file)
	siblings, _ := filepath.Glob(filepath.Join(treeDir, dir, "*.c"))
	inc := []byte("#include \"" + filepath.Base(file) + "\"")
	for _, s := range siblings {
		rel := filepath.Join(dir, filepath.Base(s))
		if !objs[strings.TrimSuffix(rel, ".c")+".o"] {
			continue
		}
		if data, err := os.ReadFile(s); err == nil && bytes.Contains(data, inc) {
			return true
		}
	}
	return false
}

// notBuilt are kelp's words for a file whose object the target's config
// does not compile.
var notBuilt = []string{
	"not built by this kernel's config",
	"not compiled in this kernel's config",
	"kbuild has no way to build it in this configuration",
	"kbuild does not compile it from C in this configuration",
}

// buildOne builds one fix and records what kelp said.
func buildOne(ctx context.Context, k *testenv.Kernel, syms, sourceTar, outDir string, o *Outcome) {
	t := time.Now()
	res, err := build.Build(ctx, build.Options{
		Patches:    []string{o.Patch},
		Tree:       treeOptions(k, sourceTar),
		Symbols:    syms,
		ModulesDir: k.ModulesDir,
		Name:       o.Module,
		OutDir:     outDir,
	})
	o.Seconds = time.Since(t).Round(100 * time.Millisecond).Seconds()
	o.Objects, o.Funcs, o.Message = nil, nil, ""
	if err == nil {
		o.Build = BuildOK
		o.Funcs = res.Functions
		o.Heads = res.PrecompiledHeads
		if res.Assembly != nil {
			for _, ob := range res.Assembly.Objects {
				o.Objects = append(o.Objects, ob.Name)
			}
		}
		return
	}
	o.Message = oneLine(err.Error())
	var ce *ktree.CompileError
	switch {
	case errors.As(err, &ce) && ce.Side == "patched":
		// The original compiles; the fix alone does not.
		o.Build = BuildCompile
	case containsAny(o.Message, notBuilt):
		o.Build = BuildNotBuilt
	default:
		o.Build = BuildRefused
	}
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// oneLine is a message's last non-empty line (kelp's reason).
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
