package klpmod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
	"github.com/kelp-project/kelp/objdiff"
)

var (
	layoutOnce sync.Once
	layoutVal  objdiff.Layouts
	layoutErr  error
)

// testLayouts compiles objdiff's layout probe in the test kernel's tree.
func testLayouts(t testing.TB, k *testenv.Kernel) objdiff.Layouts {
	t.Helper()
	layoutOnce.Do(func() {
		var path string
		path, layoutErr = k.CompileProbe(context.Background(), "kelp_layout_probe", []byte(objdiff.LayoutProbe), "kernel/fork.o")
		if layoutErr != nil {
			return
		}
		var f *elfobj.File
		if f, layoutErr = elfobj.ReadFile(path); layoutErr != nil {
			return
		}
		layoutVal, layoutErr = objdiff.LayoutsFromProbe(f)
	})
	if layoutErr != nil {
		testenv.MissingOr(t, layoutErr)
	}
	return layoutVal
}

// patchFile reads a patch: objdiff's corpus first, then klpmod's testdata.
func patchFile(t testing.TB, name string) []byte {
	t.Helper()
	for _, p := range []string{
		filepath.Join("..", "objdiff", "testdata", "corpus", name+".patch"),
		filepath.Join("testdata", name+".patch"),
	} {
		if data, err := os.ReadFile(p); err == nil {
			return data
		}
	}
	t.Fatalf("patch %s not found", name)
	return nil
}

// diffUnits compiles the patch against the test kernel and diffs every
// unit it touches, as kelp build does; objdiff must not refuse.
func diffUnits(t testing.TB, k *testenv.Kernel, patch []byte) []Unit {
	t.Helper()
	units, err := k.CompilePatch(context.Background(), patch)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	lay := testLayouts(t, k)
	kern := ksymtest.Kernel(t, k)
	type pair struct{ orig, patched *elfobj.File }
	pairs := make([]pair, len(units))
	provided := map[string]bool{}
	for _, s := range ProvidedSymbols {
		provided[s] = true
	}
	for i, u := range units {
		if pairs[i].orig, err = elfobj.ReadFile(u.Orig); err != nil {
			t.Fatal(err)
		}
		if pairs[i].patched, err = elfobj.ReadFile(u.Patched); err != nil {
			t.Fatal(err)
		}
		for _, name := range objdiff.NewGlobals(pairs[i].orig, pairs[i].patched) {
			provided[name] = true
		}
	}
	var out []Unit
	for i, u := range units {
		obj := ksym.Vmlinux
		kk := kern
		if u.Module {
			obj = u.ModName
			kk = &ksym.Kernel{Vmlinux: kern.Vmlinux, Exports: kern.Exports, Modules: map[string]*ksym.Table{obj: ksymtest.Module(t, k, obj)}}
		}
		res, err := objdiff.Diff(objdiff.Input{
			Unit: u.Object, Object: obj, Orig: pairs[i].orig, Patched: pairs[i].patched, Layouts: lay,
			Resolver: &ksym.Resolver{Kernel: kk, Object: obj, Unit: pairs[i].orig},
			Provided: provided, OrigCRCs: u.OrigCRCs, PatchedCRCs: u.PatchedCRCs,
		})
		if err != nil {
			t.Fatalf("objdiff %s: %v", u.Object, err)
		}
		out = append(out, Unit{Object: obj, Diff: res})
	}
	return out
}

// buildPatch assembles the module for the named patch into a temporary
// directory.
func buildPatch(t testing.TB, k *testenv.Kernel, name string, opts Options) *Module {
	t.Helper()
	units := diffUnits(t, k, patchFile(t, name))
	if opts.Name == "" {
		opts.Name = "kelp_" + sanitize(name)
	}
	opts.Kernel, opts.Headers = k.Release, k.Headers
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	m, err := Build(context.Background(), units, opts)
	if err != nil {
		var ke *KbuildError
		if errors.As(err, &ke) {
			t.Logf("kbuild output:\n%s", ke.Output)
		}
		t.Fatalf("build %s: %v", name, err)
	}
	return m
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
