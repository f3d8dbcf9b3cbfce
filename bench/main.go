// Command bench measures `kelp build` (the binary, as a user runs it)
// against the compiler floor on the test kernel. The floor is what no
// patch builder can avoid: compiling each object the patch touches twice
// (original and patched) with kbuild's own command, gcc and objtool, as
// many at once as there are cores, measured in the same run. kelp runs
// with a cache of its own, from empty:
//
//   - cold: empty cache, so source extraction + tree preparation + build
//     (the one-function patch, once: the first build of the run);
//   - warm, first build of the object: tree prepared, the touched objects
//     never compiled before (object cache, kbuild command records and the
//     module's init/.mod objects emptied);
//   - warm, rebuild: the rebuild after a first build, originals from the
//     object cache, every patched copy compiled whole (as in every
//     rebuild of an object without a proved precompiled head);
//   - warm, heads made: the third rebuild (the second is not timed),
//     which makes and proves the precompiled heads of the patched sources
//     (once per object and head);
//   - warm, after the heads: a rebuild after that, patched copies
//     compiled after their proved heads.
//
// Each ratio is the median over the runs of kelp's time over the floor
// measured just before it, in the same run.
//
// It also reports the peak RSS of kelp build on the three-object patch,
// and how its first build scales with cores (-j 1 against the default).
//
//	go run ./bench [-n 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/ktree"
)

var patches = []struct{ what, file string }{
	{"one function", "testdata/patches/cmdline-string.patch"},
	{"one object, 2 functions", "testdata/patches/static-inline-callers.patch"},
	{"two objects", "testdata/patches/new-global-cross-object.patch"},
	{"header, three objects", "testdata/patches/header-three-objects.patch"},
}

// rssPatch is the patch whose peak RSS is reported.
const rssPatch = 3

func main() {
	n := flag.Int("n", 5, "repetitions (the median is reported)")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench: "+err.Error())
		os.Exit(1)
	}
}

type bench struct {
	kelp    string   // the kelp binary
	cache   string   // XDG_CACHE_HOME of the kelp runs
	out     string   // output directory
	args    []string // kelp build's target options
	release string
}

func run(n int) error {
	ctx := context.Background()
	k, err := testenv.DefaultKernel()
	if err != nil {
		return err
	}
	symbols, err := vmtest.Kallsyms(ctx, k)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kelp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{kelp: filepath.Join(tmp, "kelp"), cache: filepath.Join(tmp, "cache"), out: filepath.Join(tmp, "out"), release: k.Release}
	if out, err := exec.Command("go", "build", "-o", b.kelp, "./cmd/kelp").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	b.args = []string{"-k", k.Release, "--config", k.Config, "--headers", k.Headers, "--symbols", symbols,
		"--modules", k.ModulesDir, "--skip-compiler-check", "-o", b.out}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("kernel %s, %d cores, load average %s", k.Release, runtime.NumCPU(), load)
	fmt.Printf("times: medians of %d runs; ratio: median of the runs' kelp / floor, each run's floor measured just before its builds; floor = gcc+objtool twice per touched object, %d at once\n\n", n, runtime.NumCPU())

	// The first build starts from the empty cache: cold. What earlier
	// runs left to write back is written first, so that it does not
	// slow the extraction.
	syscall.Sync()
	start := time.Now()
	_, coldOut, err := b.buildOutput(ctx, patches[0].file)
	if err != nil {
		return fmt.Errorf("cold: %w", err)
	}
	coldTime := time.Since(start)
	// The extracted tree (over a gigabyte) is written back before the
	// warm runs, which it would otherwise slow, kelp's file operations
	// (its object cache's fsync) more than the floor's compiles.
	syscall.Sync()
	tree, err := ktree.Open(ctx, ktree.Options{Release: k.Release, Config: k.Config, Headers: k.Headers,
		SourceTar: k.SourceTar, CacheDir: filepath.Join(b.cache, "kelp", "trees"), SkipCompilerCheck: true})
	if err != nil {
		return err
	}
	fmt.Printf("%-24s %7s %14s %6s %14s %6s %14s %6s %14s %6s %8s\n", "patch", "floor", "kelp (rebuild)", "ratio", "(after heads)", "ratio", "kelp (first)", "ratio", "(heads made)", "ratio", "cold")
	var rss int64
	var spread []string
	for i, p := range patches {
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
		var floor, first, rebuild, made, cached []time.Duration
		for r := 0; r < n; r++ {
			d, err := gccFloor(ctx, tree, objs)
			if err != nil {
				return err
			}
			floor = append(floor, d)
			d, err = b.firstBuild(ctx, tree, p.file)
			if err != nil {
				return err
			}
			first = append(first, d)
			// The rebuilds after a first build find the originals
			// cached; the third makes their precompiled heads, and
			// the builds after it compile after them.
			for _, times := range []*[]time.Duration{&rebuild, nil, &made, &cached} {
				start := time.Now()
				peak, err := b.build(ctx, p.file)
				if err != nil {
					return err
				}
				if times != nil {
					*times = append(*times, time.Since(start))
				}
				if i == rssPatch {
					rss = max(rss, peak)
				}
			}
		}
		f, a, r, m, c := median(floor), median(first), median(rebuild), median(made), median(cached)
		coldCol := "-"
		if i == 0 {
			coldCol = fmt.Sprintf("%.1fs", coldTime.Seconds())
		}
		fmt.Printf("%-24s %6.2fs %13.2fs %5.2f× %13.2fs %5.2f× %13.2fs %5.2f× %13.2fs %5.2f× %8s\n", p.what, f.Seconds(), r.Seconds(), medianRatio(rebuild, floor), c.Seconds(), medianRatio(cached, floor), a.Seconds(), medianRatio(first, floor), m.Seconds(), medianRatio(made, floor), coldCol)
		spread = append(spread, fmt.Sprintf("  %-24s rebuild %s; after the heads %s; first %s; heads made %s", p.what, ratios(rebuild, floor), ratios(cached, floor), ratios(first, floor), ratios(made, floor)))
	}
	fmt.Printf("\neach run's kelp / floor, sorted:\n%s\n", strings.Join(spread, "\n"))
	// A header change's objects compile on every core: the first build of
	// the header patch with one compile at a time against the default,
	// in turn.
	var one, all []time.Duration
	for r := 0; r < n; r++ {
		d, err := b.firstBuild(ctx, tree, patches[rssPatch].file, "-j", "1")
		if err != nil {
			return err
		}
		one = append(one, d)
		if d, err = b.firstBuild(ctx, tree, patches[rssPatch].file); err != nil {
			return err
		}
		all = append(all, d)
	}
	fmt.Printf("\n%s, first build: -j 1 %.2fs, -j %d (default) %.2fs, speed-up %.2f× (median of the runs' -j 1 / -j %d)\n",
		patches[rssPatch].what, median(one).Seconds(), runtime.NumCPU(), median(all).Seconds(), medianRatio(one, all), runtime.NumCPU())
	fmt.Printf("\ncold build of %q, kelp build's stages:\n", patches[0].what)
	for _, line := range strings.Split(strings.TrimSpace(coldOut), "\n") {
		if !strings.HasPrefix(line, "built ") {
			fmt.Println("  " + line)
		}
	}
	load, _ = os.ReadFile("/proc/loadavg")
	fmt.Printf("\npeak RSS of kelp build, %s (largest of kelp and the compilers it ran): %.0f MiB\n", patches[rssPatch].what, float64(rss)/(1<<20))
	fmt.Printf("load average after: %s", load)
	return nil
}

// firstBuild times a first build of patch's objects: nothing of them
// cached (the prepared tree, kbuild's environment and link template
// stay). extra are more kelp build options.
func (b *bench) firstBuild(ctx context.Context, tree *ktree.Tree, patch string, extra ...string) (time.Duration, error) {
	for _, dir := range []string{filepath.Join(b.cache, "kelp", "objects"), filepath.Join(tree.Dir, ".kelp-commands"),
		filepath.Join(b.cache, "kelp", "modlink", "objects")} {
		if err := os.RemoveAll(dir); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if _, _, err := b.buildOutput(ctx, patch, extra...); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// build runs kelp build on patch with the bench's cache and returns the
// peak RSS wait4 reported.
func (b *bench) build(ctx context.Context, patch string) (int64, error) {
	rss, _, err := b.buildOutput(ctx, patch)
	return rss, err
}

// buildOutput is build, also returning what kelp build printed; extra
// are more kelp build options.
func (b *bench) buildOutput(ctx context.Context, patch string, extra ...string) (int64, string, error) {
	args := append(append(append([]string{"build"}, b.args...), extra...), patch)
	cmd := exec.CommandContext(ctx, b.kelp, args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+b.cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("kelp build %s: %v\n%s", patch, err, out)
	}
	rss, _ := sys.MaxRSS(cmd.ProcessState)
	return rss, string(out), nil
}

// gccFloor runs kbuild's recorded command (gcc and objtool) for each
// object twice, as many at once as there are cores, writing outside the
// tree.
func gccFloor(ctx context.Context, tree *ktree.Tree, objs []ktree.Object) (time.Duration, error) {
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
	if err := runJobs(procs, runtime.NumCPU()); err != nil {
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

// medianRatio is the median of a[i]/b[i]: each run's kelp time over the
// floor measured in the same run, so that a slower or faster stretch of
// the machine moves both.
func medianRatio(a, b []time.Duration) float64 {
	r := runRatios(a, b)
	return r[len(r)/2]
}

// ratios lists the runs' ratios (runRatios), as medianRatio takes them.
func ratios(a, b []time.Duration) string {
	r := runRatios(a, b)
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

// runRatios are a[i]/b[i], sorted.
func runRatios(a, b []time.Duration) []float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i].Seconds() / b[i].Seconds()
	}
	sort.Float64s(r)
	return r
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
