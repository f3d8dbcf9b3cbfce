package ktree

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakeKernelTree writes a tree with the two kbuild entry points prepare
// uses: scripts/config and a Makefile whose olddefconfig and
// modules_prepare targets leave a mark.
func fakeKernelTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"Makefile":          "olddefconfig:\n\techo olddefconfig >> prepared\nmodules_prepare:\n\techo modules_prepare >> prepared\n",
		"scripts/config":    "#!/bin/sh\nexit 0\n",
		"fs/proc/cmdline.c": "int cmdline_proc_show(void) { return 0; }\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func listing(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p+" "+fi.Mode().String()+" "+fi.ModTime().String())
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestSourceDirNotWritten: --sourcedir builds from a prepared copy; the
// user's tree and its parent directory are left exactly as they were, and
// an edit to the tree gives a new copy that replaces the old one.
func TestSourceDirNotWritten(t *testing.T) {
	src := fakeKernelTree(t)
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("CONFIG_LIVEPATCH=y\n"), 0o644)
	cache := t.TempDir()
	before := listing(t, src)
	opts := Options{Release: "6.1.0-56-amd64", SourceDir: src, Config: cfg, Headers: src, CacheDir: cache, SkipCompilerCheck: true}
	tr, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if listing(t, src) != before {
		t.Errorf("the user's tree changed:\nbefore\n%s\nafter\n%s", before, listing(t, src))
	}
	if _, err := os.Stat(src + ".lock"); !os.IsNotExist(err) {
		t.Errorf("a lock file next to the user's tree: %v", err)
	}
	if !strings.HasPrefix(tr.Dir, cache+string(os.PathSeparator)) {
		t.Fatalf("tree %s is not a copy in the cache %s", tr.Dir, cache)
	}
	got, err := os.ReadFile(filepath.Join(tr.Dir, ".config"))
	if err != nil || string(got) != "CONFIG_LIVEPATCH=y\n" {
		t.Errorf("copy's .config = %q, %v", got, err)
	}
	p, err := os.ReadFile(filepath.Join(tr.Dir, "prepared"))
	steps := strings.Fields(string(p))
	sort.Strings(steps)
	if err != nil || strings.Join(steps, " ") != "modules_prepare olddefconfig" {
		t.Errorf("copy not prepared: %q, %v", p, err)
	}
	// The same tree again: the same copy, not prepared twice.
	again, err := Open(context.Background(), opts)
	if err != nil || again.Dir != tr.Dir {
		t.Fatalf("second open: %v, %s vs %s", err, again.Dir, tr.Dir)
	}
	// An edit: a new copy with it, the old copy gone.
	src2 := filepath.Join(src, "fs/proc/cmdline.c")
	os.WriteFile(src2, []byte("int cmdline_proc_show(void) { return 1; }\n"), 0o644)
	os.Chtimes(src2, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	edited, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if edited.Dir == tr.Dir {
		t.Fatal("an edited tree reused the copy of the old one")
	}
	if c, err := os.ReadFile(filepath.Join(edited.Dir, "fs/proc/cmdline.c")); err != nil || !strings.Contains(string(c), "return 1") {
		t.Errorf("the new copy lacks the edit: %q (%v)", c, err)
	}
	if _, err := os.Stat(tr.Dir); !os.IsNotExist(err) {
		t.Errorf("the old copy %s is still there: %v", tr.Dir, err)
	}
}
