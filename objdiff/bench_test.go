package objdiff

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
)

// BenchmarkDiffSchedCore diffs the largest object of the set,
// kernel/sched/core.o, against a one-line string change, from parsed
// objects to the output object and report. alloc-x is the memory
// allocated per diff divided by the object's size (an upper bound of the
// live heap; the target is ≤ 10).
func BenchmarkDiffSchedCore(b *testing.B) {
	k := testenv.RequireKernel(b)
	patch, err := os.ReadFile(filepath.Join("testdata", "bench", "sched-core.patch"))
	if err != nil {
		b.Fatal(err)
	}
	units, err := k.CompilePatch(context.Background(), patch)
	if err != nil {
		testenv.MissingOr(b, err)
	}
	u := units[0]
	origData, err := os.ReadFile(u.Orig)
	if err != nil {
		b.Fatal(err)
	}
	patchedData, err := os.ReadFile(u.Patched)
	if err != nil {
		b.Fatal(err)
	}
	lay := testLayouts(b, k)
	kern := ksymtest.Kernel(b, k)
	var before, after runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&before)
	for i := 0; i < b.N; i++ {
		orig, err := elfobj.Parse(origData)
		if err != nil {
			b.Fatal(err)
		}
		patched, err := elfobj.Parse(patchedData)
		if err != nil {
			b.Fatal(err)
		}
		res, err := Diff(Input{Unit: u.Object, Orig: orig, Patched: patched, Layouts: lay,
			Resolver: &ksym.Resolver{Kernel: kern, Object: ksym.Vmlinux, Unit: orig}})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Report.Changed) != 1 || res.Report.Changed[0].Name != "sched_show_task" {
			b.Fatalf("changed = %+v", res.Report.Changed)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(origData)), "alloc-x")
}

// BenchmarkDiffIdentitySet diffs each object of the 405-object set against
// itself (parsed once, outside the timer); ns/op is for the whole set.
func BenchmarkDiffIdentitySet(b *testing.B) {
	k := testenv.RequireKernel(b)
	objs, err := k.Objects(context.Background(), testenv.KernelObjectSet())
	if err != nil {
		testenv.MissingOr(b, err)
	}
	lay := testLayouts(b, k)
	files := make([][2]*elfobj.File, len(objs))
	for i, o := range objs {
		for j := range files[i] {
			if files[i][j], err = elfobj.ReadFile(o.Path); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, f := range files {
			if _, err := Diff(Input{Unit: objs[j].Name, Orig: f[0], Patched: f[1], Layouts: lay}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
