package testenv

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"testing"
)

func TestPatchedFiles(t *testing.T) {
	files, err := patchedFiles([]byte("--- a/fs/b.c\n+++ b/fs/b.c\n@@\n--- a/fs/a.c\t2024\n+++ b/fs/a.c\t2024\n"))
	if err != nil || len(files) != 2 || files[0] != "fs/a.c" || files[1] != "fs/b.c" {
		t.Errorf("patchedFiles = %q, %v", files, err)
	}
	for _, bad := range []string{"+++ b/include/linux/fs.h\n", "+++ b/../x.c\n", "+++ fs/a.c\n", ""} {
		if _, err := patchedFiles([]byte(bad)); err == nil {
			t.Errorf("patchedFiles(%q) accepted", bad)
		}
	}
}

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
	orig, _ := os.ReadFile(units[0].Orig)
	patched, _ := os.ReadFile(units[0].Patched)
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

func TestApplyPatch(t *testing.T) {
	src := "a\nb\nc\nd\ne\nf\n"
	patch := "--- a/x.c\n+++ b/x.c\n@@ -2,2 +2,3 @@\n b\n-c\n+C\n+C2\n@@ -5,1 +6,1 @@\n-e\n+E\n--- a/y.c\n+++ b/y.c\n@@ -1 +1 @@\n-zz\n+yy\n"
	got, err := applyPatch(src, patch, "x.c")
	if err != nil || got != "a\nb\nC\nC2\nd\nE\nf\n" {
		t.Errorf("applyPatch = %q, %v", got, err)
	}
	// A hunk whose line number is off is found by its context.
	got, err = applyPatch("0\n"+src, patch, "x.c")
	if err != nil || got != "0\na\nb\nC\nC2\nd\nE\nf\n" {
		t.Errorf("shifted applyPatch = %q, %v", got, err)
	}
	if _, err := applyPatch("q\n", patch, "x.c"); err == nil {
		t.Error("a hunk that does not match was applied")
	}
}
