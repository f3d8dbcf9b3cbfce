package build_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
)

// TestPrecompiledHead builds each patch five times with an object cache
// of its own: the first build compiles the original; the next two find
// it cached and make no head (two rebuilds go by first); the fourth makes
// the precompiled head of the patched source and proves it (or finds
// that it changes the object and marks it unused); the fifth compiles the
// patched copy after a proved head. Every build writes the same module,
// byte for byte. The patches are of three
// subsystems: fs/proc (vmlinux), a network driver (a module) and
// kernel/sys.c, which exports symbols (the CRCs are computed from the
// patched copy). The first two are compiled after their heads. Two more
// builds without heads (Tree.NoHeads), one with the head in the cache and
// one after it is removed, use none and make none.
func TestPrecompiledHead(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	used := 0
	for _, p := range []string{"cmdline-string", "module-dummy", "syscall-uname"} {
		t.Run(p, func(t *testing.T) {
			cache := t.TempDir()
			var modules [][]byte
			const runs, makes = 5, 4 // the build that makes the head
			for run := 1; run <= runs; run++ {
				opts := buildOptions(t, k, t.TempDir(), filepath.Join("..", "testdata", "patches", p+".patch"))
				opts.Tree.ObjectCache = cache
				var compiled string
				opts.Progress = func(e build.Event) {
					if e.Stage == "compile" && e.Done {
						compiled = e.Message
					}
				}
				res, err := build.Build(ctx, opts)
				if err != nil {
					t.Fatalf("build %d: %v", run, err)
				}
				data, err := os.ReadFile(res.Module)
				if err != nil {
					t.Fatal(err)
				}
				modules = append(modules, data)
				proved, err := filepath.Glob(filepath.Join(cache, "*", "pch-*", "proved"))
				if err != nil {
					t.Fatal(err)
				}
				failed, err := filepath.Glob(filepath.Join(cache, "*", "pch-*", "failed"))
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if run >= makes {
					want = 1
				}
				if len(proved)+len(failed) != want {
					t.Errorf("after build %d: %d proved and %d failed heads in the object cache, want %d in all", run, len(proved), len(failed), want)
				}
				cached := strings.Contains(compiled, "1 original(s) from the object cache")
				head := strings.Contains(compiled, "after a precompiled head")
				if head != (len(res.PrecompiledHeads) == 1) {
					t.Errorf("build %d: %q, but the result names %q as compiled after a head", run, compiled, res.PrecompiledHeads)
				}
				if cached != (run > 1) || head != (run == runs && len(proved) == 1) {
					t.Errorf("build %d (%d proved heads): %q; want the original cached from the second build on, and a proved head used in build %d", run, len(proved), compiled, runs)
				}
				if run == runs && head {
					used++
				}
			}
			// With NoHeads, a build neither uses the head there is nor
			// makes one where there is none, and writes the same module.
			for _, drop := range []bool{false, true} {
				if drop {
					made, err := filepath.Glob(filepath.Join(cache, "*", "pch-*"))
					if err != nil || len(made) != 1 {
						t.Fatalf("heads in the object cache: %q (%v), want one", made, err)
					}
					if err := os.RemoveAll(made[0]); err != nil {
						t.Fatal(err)
					}
				}
				opts := buildOptions(t, k, t.TempDir(), filepath.Join("..", "testdata", "patches", p+".patch"))
				opts.Tree.ObjectCache = cache
				opts.Tree.NoHeads = true
				res, err := build.Build(ctx, opts)
				if err != nil {
					t.Fatalf("build without heads: %v", err)
				}
				if len(res.PrecompiledHeads) != 0 {
					t.Errorf("build without heads: %q compiled after a head", res.PrecompiledHeads)
				}
				heads, err := filepath.Glob(filepath.Join(cache, "*", "pch-*"))
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{false: 1, true: 0}[drop]; len(heads) != want {
					t.Errorf("build without heads, %d head(s) in the object cache before it: %d after it", want, len(heads))
				}
				data, err := os.ReadFile(res.Module)
				if err != nil {
					t.Fatal(err)
				}
				modules = append(modules, data)
			}
			for run, m := range modules[1:] {
				if !bytes.Equal(m, modules[0]) {
					t.Errorf("build %d wrote another module than build 1 (%d bytes, %d)", run+2, len(m), len(modules[0]))
				}
			}
		})
	}
	if used < 2 {
		t.Errorf("%d of the patches compiled after a precompiled head, want 2 at least", used)
	}
}
