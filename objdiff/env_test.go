package objdiff

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
)

var (
	layoutOnce sync.Once
	layoutVal  Layouts
	layoutErr  error
)

// testLayouts compiles LayoutProbe in the test kernel's tree.
func testLayouts(t testing.TB, k *testenv.Kernel) Layouts {
	t.Helper()
	layoutOnce.Do(func() {
		var path string
		path, layoutErr = k.CompileProbe(context.Background(), "kelp_layout_probe", []byte(LayoutProbe), "kernel/fork.o")
		if layoutErr != nil {
			return
		}
		var f *elfobj.File
		if f, layoutErr = elfobj.ReadFile(path); layoutErr != nil {
			return
		}
		layoutVal, layoutErr = LayoutsFromProbe(f)
	})
	if layoutErr != nil {
		testenv.MissingOr(t, layoutErr)
	}
	return layoutVal
}

// unitResult is objdiff's answer for one unit of a corpus patch.
type unitResult struct {
	unit testenv.PatchedUnit
	res  *Result
	err  error
}

// diffPatch compiles the corpus patch testdata/corpus/<name>.patch and
// diffs every unit it touches against the test kernel's symbols.
func diffPatch(t *testing.T, name string, either bool) []unitResult {
	t.Helper()
	k := testenv.RequireKernel(t)
	patch, err := os.ReadFile(filepath.Join("testdata", "corpus", name+".patch"))
	if err != nil {
		t.Fatal(err)
	}
	if either {
		if patch, err = k.PatchOrReverse(context.Background(), patch); err != nil {
			t.Fatal(err)
		}
	}
	units, err := k.CompilePatch(context.Background(), patch)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	lay := testLayouts(t, k)
	kern := ksymtest.Kernel(t, k)
	type pair struct{ orig, patched *elfobj.File }
	pairs := make([]pair, len(units))
	provided := map[string]bool{}
	for i, u := range units {
		if pairs[i].orig, err = elfobj.ReadFile(u.Orig); err != nil {
			t.Fatal(err)
		}
		if pairs[i].patched, err = elfobj.ReadFile(u.Patched); err != nil {
			t.Fatal(err)
		}
		for _, name := range NewGlobals(pairs[i].orig, pairs[i].patched) {
			provided[name] = true
		}
	}
	out := make([]unitResult, len(units))
	for i, u := range units {
		obj := ksym.Vmlinux
		kk := kern
		if u.Module {
			obj = u.ModName
			mods := map[string]*ksym.Table{obj: ksymtest.Module(t, k, obj)}
			// The modules whose exports the unit calls (kvm for kvm_amd).
			for _, sym := range pairs[i].orig.Symbols {
				if e, ok := kern.Exports[sym.Name]; ok && sym.IsUndefined() && e.Object != ksym.Vmlinux && mods[e.Object] == nil {
					mods[e.Object] = ksymtest.Module(t, k, e.Object)
				}
			}
			kk = &ksym.Kernel{Vmlinux: kern.Vmlinux, Exports: kern.Exports, Modules: mods}
		}
		res, err := Diff(Input{
			Unit:        u.Object,
			Object:      obj,
			Orig:        pairs[i].orig,
			Patched:     pairs[i].patched,
			Layouts:     lay,
			Resolver:    &ksym.Resolver{Kernel: kk, Object: obj, Unit: pairs[i].orig},
			Provided:    provided,
			OrigCRCs:    u.OrigCRCs,
			PatchedCRCs: u.PatchedCRCs,
		})
		out[i] = unitResult{u, res, err}
	}
	return out
}
