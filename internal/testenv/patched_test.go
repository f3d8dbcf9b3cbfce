package testenv

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"testing"
)

// TestCompilePatch compiles a one-line string change twice and checks that
// only the patched copy carries the new string and that the unpatched copy
// has the same code as the object kbuild built in the tree.
func TestCompilePatch(t *testing.T) {
	k := RequireKernel(t)
	patch := []byte(`--- a/fs/proc/loadavg.c
+++ b/fs/proc/loadavg.c
@@ -17,7 +17,7 @@
 
 	get_avenrun(avnrun, FIXED_1/200, 0);
 
-	seq_printf(m, "%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d\n",
+	seq_printf(m, "%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d patched\n",
 		LOAD_INT(avnrun[0]), LOAD_FRAC(avnrun[0]),
 		LOAD_INT(avnrun[1]), LOAD_FRAC(avnrun[1]),
 		LOAD_INT(avnrun[2]), LOAD_FRAC(avnrun[2]),
`)
	ctx := context.Background()
	units, err := k.CompilePatch(ctx, patch)
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || units[0].Object != "fs/proc/loadavg.o" || units[0].Module {
		t.Fatalf("units = %+v", units)
	}
	orig, err := os.ReadFile(units[0].Orig)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := os.ReadFile(units[0].Patched)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(orig, []byte(" patched\n")) || !bytes.Contains(patched, []byte(" patched\n")) {
		t.Errorf("the new string is not (only) in the patched object")
	}
	tree, err := k.Objects(ctx, []string{"fs/proc/loadavg.o"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := sectionData(t, units[0].Orig, ".text.loadavg_proc_show"), sectionData(t, tree[0].Path, ".text.loadavg_proc_show")
	if !bytes.Equal(a, b) {
		t.Errorf("the unpatched copy compiles to other code than the tree's object")
	}
	for _, s := range []string{".orc_unwind", ".return_sites"} {
		if sectionData(t, units[0].Patched, s) == nil {
			t.Errorf("patched object lacks %s: objtool did not run", s)
		}
	}
}

func sectionData(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(name)
	if s == nil {
		return nil
	}
	d, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
