package ktree

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParamPrefixNames: the names come from the tree's C files, not from
// the directories without kernel objects, and are kept in the tree; a
// walk that finds a file gone (make's temporary files while the tree is
// prepared) passes over it.
func TestParamPrefixNames(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"kernel/params.c":       "#undef MODULE_PARAM_PREFIX\n#define MODULE_PARAM_PREFIX \"printk.\"\n",
		"kernel/rcu/update.c":   "  # define MODULE_PARAM_PREFIX \"rcu-update.\"\n",
		"include/linux/x.h":     "#define MODULE_PARAM_PREFIX KBUILD_MODNAME \".\"\n",
		"tools/perf/t.c":        "#define MODULE_PARAM_PREFIX \"perf.\"\n",
		".hidden/h.c":           "#define MODULE_PARAM_PREFIX \"hidden.\"\n",
		"drivers/char/notc.txt": "#define MODULE_PARAM_PREFIX \"txt.\"\n",
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"printk", "rcu_update"}
	got, err := keepParamPrefixNames(context.Background(), dir)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("keepParamPrefixNames = %q, %v; want %q", got, err, want)
	}
	kept, err := os.ReadFile(filepath.Join(dir, paramPrefixFile))
	if err != nil || !slices.Equal(strings.Fields(string(kept)), want) {
		t.Fatalf("kept %q, %v; want %q", kept, err, want)
	}
	// The kept names are read back, not the files again.
	if err := os.Remove(filepath.Join(dir, "kernel/params.c")); err != nil {
		t.Fatal(err)
	}
	if got, err := (&Tree{Dir: dir}).ParamPrefixNames(context.Background()); err != nil || !slices.Equal(got, want) {
		t.Errorf("ParamPrefixNames = %q, %v; want the kept %q", got, err, want)
	}
	// Files and directories removed during the walk are passed over
	// (each round races a removal with a walk).
	gone := filepath.Join(dir, "drivers", "gone")
	for round := range 10 {
		for i := range 200 {
			p := filepath.Join(gone, strings.Repeat("d", i%7+1), "f.c")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("int x;\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- os.RemoveAll(gone) }()
		if _, err := keepParamPrefixNames(context.Background(), dir); err != nil {
			t.Errorf("round %d, a walk while files are removed: %v", round, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
