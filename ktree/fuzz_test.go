package ktree

import (
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"
)

// formatPatch writes a parsed patch back as a unified diff: every old line
// removed, every new line added.
func formatPatch(p *Patch) string {
	var b strings.Builder
	for _, f := range p.Files {
		fmt.Fprintf(&b, "--- a/%s\n+++ b/%s\n", f.Path, f.Path)
		for _, h := range f.Hunks {
			// A hunk that removes nothing names the line it follows.
			start := h.Start + 1
			if len(h.Old) == 0 {
				start = h.Start
			}
			fmt.Fprintf(&b, "@@ -%d,%d +%d,%d @@\n", start, len(h.Old), start, len(h.New))
			for _, l := range h.Old {
				b.WriteString("-" + l)
			}
			for _, l := range h.New {
				b.WriteString("+" + l)
			}
		}
	}
	return b.String()
}

// FuzzParsePatch: a patch file is refused in one line or read into files
// that stay inside the tree, with hunks whose lines are whole lines; and
// written back it reads the same.
func FuzzParsePatch(f *testing.F) {
	f.Add("From x\nSubject: fix\n---\n--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n-- \n2.39\n")
	f.Add("--- a/x.c\n+++ b/x.c\n@@ -5 +5,2 @@\n-old\n+new\n+more\n")
	f.Add("--- a/x.c\n+++ b/x.c\n@@ -5,4 +5,4 @@\n a\n-b\n")
	f.Add("--- a/../x.c\n+++ b/../x.c\n@@ -1 +1 @@\n-a\n+b\n")
	f.Add("--- /dev/null\n+++ b/new.c\n@@ -0,0 +1 @@\n+a\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePatch([]byte(text))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if len(p.Files) == 0 {
			t.Fatal("a patch of no files")
		}
		for _, fp := range p.Files {
			if fp.Path == "" || path.IsAbs(fp.Path) || path.Clean(fp.Path) != fp.Path || fp.Path == ".." || strings.HasPrefix(fp.Path, "../") {
				t.Fatalf("path %q leaves the tree", fp.Path)
			}
			if len(fp.Hunks) == 0 {
				t.Fatalf("%s: no hunks", fp.Path)
			}
			for _, h := range fp.Hunks {
				if h.Start < 0 {
					t.Fatalf("%s: hunk at %d", fp.Path, h.Start)
				}
				for _, l := range append(append([]string(nil), h.Old...), h.New...) {
					if !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 {
						t.Fatalf("%s: line %q is not one whole line", fp.Path, l)
					}
				}
			}
		}
		again, err := ParsePatch([]byte(formatPatch(p)))
		if err != nil {
			t.Fatalf("written back: %v\n%s", err, formatPatch(p))
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("reads differently once written back")
		}
	})
}

// TestTruncatedHunks: a hunk that ends before the lines its header
// announces, or runs past them, is refused: applying part of a hunk would
// build a change nobody wrote.
func TestTruncatedHunks(t *testing.T) {
	for name, text := range map[string]string{
		"cut":      "--- a/x.c\n+++ b/x.c\n@@ -5,4 +5,4 @@\n a\n-b\n+c\n",
		"garbage":  "--- a/x.c\n+++ b/x.c\n@@ -5,3 +5,3 @@\n a\n-b\n+c\n*d\n",
		"overlong": "--- a/x.c\n+++ b/x.c\n@@ -5,1 +5,2 @@\n a\n-b\n+c\n",
		"dotdot":   "--- a/..\n+++ b/..\n@@ -1 +1 @@\n-a\n+b\n",
	} {
		if _, err := ParsePatch([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
