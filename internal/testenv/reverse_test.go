package testenv

import (
	"os"
	"testing"

	"github.com/kelp-project/kelp/ktree"
)

// TestReversePatch: the reverse of a two-hunk patch (one hunk removing,
// one adding, a line-count range of one) turns the patched file back into
// the original, names the files the other way round and keeps the
// description; reversing twice gives the patch back, also for a real
// three-hunk case of the objdiff corpus.
func TestReversePatch(t *testing.T) {
	orig := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	patch := []byte(`Two hunks.

--- a/x.c
+++ b/x.c
@@ -1,3 +1,2 @@
 a
-b
 c
@@ -8 +7,2 @@
 h
+h2
`)
	apply := func(p []byte, src string) string {
		t.Helper()
		pp, err := ktree.ParsePatch(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pp.File("x.c").Apply(src, false)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	patched := apply(patch, orig)
	if patched != "a\nc\nd\ne\nf\ng\nh\nh2\ni\nj\n" {
		t.Fatalf("patched = %q", patched)
	}
	rev := ReversePatch(patch)
	want := `Two hunks.

--- a/x.c
+++ b/x.c
@@ -1,2 +1,3 @@
 a
+b
 c
@@ -7,2 +8 @@
 h
-h2
`
	if string(rev) != want {
		t.Errorf("reverse:\n%s\nwant:\n%s", rev, want)
	}
	if back := apply(rev, patched); back != orig {
		t.Errorf("reverse applied to the patched file = %q, want the original", back)
	}
	real, err := os.ReadFile("../../objdiff/testdata/corpus/anon-rodata-debug-ref-bluetooth.patch")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{patch, real} {
		if twice := ReversePatch(ReversePatch(p)); string(twice) != string(p) {
			t.Errorf("reversed twice:\n%s\nwant:\n%s", twice, p)
		}
	}
}
