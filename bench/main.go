// Command bench measures kelp build against the gcc floor on the test
// kernel: for each patch, compiling the objects it touches twice with
// kbuild's own commands (what no patch builder can avoid) versus kelp
// build with the tree already prepared (first build of those objects, and
// a repeat). With -cold it also times a build from an empty cache
// (extract + prepare + build).
//
//	go run ./bench [-cold] [-n 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/ktree"
)

var patches = []struct{ what, file string }{
	{"one function", "testdata/patches/cmdline-string.patch"},
	{"one object, 3 functions", "testdata/patches/static-inline-callers.patch"},
	{"two objects", "testdata/patches/new-global-cross-object.patch"},
}

func main() {
	cold := flag.Bool("cold", false, "also time a build from an empty source-tree cache")
	n := flag.Int("n", 3, "repetitions (the median is reported)")
	flag.Parse()
	if err := run(*cold, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench: "+err.Error())
		os.Exit(1)
	}
}

func run(cold bool, n int) error {
	ctx := context.Background()
	k, err := testenv.DefaultKernel()
	if err != nil {
		return err
	}
	topts, err := k.TreeOptions()
	if err != nil {
		return err
	}
	tree, err := ktree.Open(ctx, topts)
	if err != nil {
		return err
	}
	symbols, err := vmtest.Kallsyms(ctx, k)
	if err != nil {
		return err
	}
	out, err := os.MkdirTemp("", "kelp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	opts := func(p string) build.Options {
		return build.Options{Patches: []string{p}, Tree: topts, Symbols: symbols, ModulesDir: k.ModulesDir, OutDir: out}
	}
	fmt.Printf("kernel %s, %d repetitions, median\n\n", k.Release, n)
	fmt.Printf("%-26s %8s %10s %8s %10s %8s\n", "patch", "gcc×2", "kelp first", "ratio", "kelp again", "ratio")
	for _, p := range patches {
		data, err := os.ReadFile(p.file)
		if err != nil {
			return err
		}
		pp, err := ktree.ParsePatch(data)
		if err != nil {
			return err
		}
		objs, _, err := tree.Objects(ctx, pp)
		if err != nil {
			return err
		}
		var floor, first, again []time.Duration
		for i := 0; i < n; i++ {
			d, err := gccFloor(ctx, tree, objs)
			if err != nil {
				return err
			}
			floor = append(floor, d)
			// First build of these objects: kbuild has not built them
			// in the tree yet.
			for _, o := range objs {
				os.Remove(filepath.Join(tree.Dir, o.Name))
			}
			start := time.Now()
			if _, err := build.Build(ctx, opts(p.file)); err != nil {
				return fmt.Errorf("%s: %w", p.file, err)
			}
			first = append(first, time.Since(start))
			start = time.Now()
			if _, err := build.Build(ctx, opts(p.file)); err != nil {
				return fmt.Errorf("%s: %w", p.file, err)
			}
			again = append(again, time.Since(start))
		}
		f, a, b := median(floor), median(first), median(again)
		fmt.Printf("%-26s %7.2fs %9.2fs %7.2f× %9.2fs %7.2f×\n", p.what, f.Seconds(), a.Seconds(), a.Seconds()/f.Seconds(), b.Seconds(), b.Seconds()/f.Seconds())
	}
	if cold {
		dir, err := os.MkdirTemp("", "kelp-bench-cold-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o := opts(patches[0].file)
		o.Tree.Dir = ""
		o.Tree.CacheDir = dir
		o.Tree.SkipCompilerCheck = true
		start := time.Now()
		res, err := build.Build(ctx, o)
		if err != nil {
			return err
		}
		fmt.Printf("\ncold (empty cache: extract + prepare + build of %q): %.1fs\n", patches[0].what, time.Since(start).Seconds())
		for _, t := range res.Timings {
			fmt.Printf("  %-8s %6.2fs\n", t.Stage, t.Seconds)
		}
	}
	return nil
}

// gccFloor runs kbuild's recorded command (gcc and objtool) for each
// object twice, in parallel as kelp does, writing outside the tree.
func gccFloor(ctx context.Context, tree *ktree.Tree, objs []ktree.Object) (time.Duration, error) {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	if err := tree.BuildObjects(ctx, names, nil); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "kelp-floor-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	var scripts []string
	for i, o := range objs {
		cmd, err := tree.Command(o.Name)
		if err != nil {
			return 0, err
		}
		for side := 0; side < 2; side++ {
			outObj := filepath.Join(tmp, fmt.Sprintf("%d-%d.o", i, side))
			s := strings.ReplaceAll(cmd, " -o "+o.Name+" ", " -o "+outObj+" ")
			s = strings.TrimSuffix(strings.TrimRight(s, " "), o.Name) + outObj
			s = mmd.ReplaceAllString(s, "-Wp,-MMD,"+outObj+".d")
			scripts = append(scripts, s)
		}
	}
	start := time.Now()
	procs := make([]*exec.Cmd, 0, len(scripts))
	for _, s := range scripts {
		c := exec.CommandContext(ctx, "sh", "-c", s)
		c.Dir = tree.Dir
		procs = append(procs, c)
	}
	if err := runJobs(procs, tree.Jobs); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

var mmd = regexp.MustCompile(`-Wp,-MMD,\S+`)

func runJobs(cmds []*exec.Cmd, jobs int) error {
	sem := make(chan struct{}, jobs)
	errs := make(chan error, len(cmds))
	for _, c := range cmds {
		sem <- struct{}{}
		go func(c *exec.Cmd) {
			defer func() { <-sem }()
			if out, err := c.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%w: %s", err, out)
				return
			}
			errs <- nil
		}(c)
	}
	for range cmds {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// cachedKallsyms is the test kernel's kallsyms dump that the tests and
// make demo take from a boot (kelp symbols) and cache.
