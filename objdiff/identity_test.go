package objdiff

import (
	"context"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
)

// TestIdentity diffs every object of the kernel object set against itself:
// nothing may be reported changed, new or refused, and no output object is
// produced.
func TestIdentity(t *testing.T) {
	k := testenv.RequireKernel(t)
	objs, err := k.Objects(context.Background(), testenv.KernelObjectSet())
	if err != nil {
		testenv.MissingOr(t, err)
	}
	lay := testLayouts(t, k)
	for _, o := range objs {
		t.Run(o.Name, func(t *testing.T) {
			a, err := elfobj.ReadFile(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := elfobj.ReadFile(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Diff(Input{Unit: o.Name, Orig: a, Patched: b, Layouts: lay})
			if err != nil {
				t.Fatal(err)
			}
			r := res.Report
			if res.Object != nil || len(r.Changed)+len(r.New)+len(r.Fresh)+len(r.Helpers)+len(r.LineOnly)+len(r.Warnings) > 0 {
				t.Errorf("identity diff reports something: %+v", r)
			}
		})
	}
}
