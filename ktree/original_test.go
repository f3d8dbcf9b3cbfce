package ktree_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// originalObjects span a built-in object, a single-object module (objtool
// --module), objects of a multi-object module and of another subsystem.
var originalObjects = []string{"fs/proc/cmdline.o", "drivers/block/brd.o", "fs/ext4/hash.o", "kernel/livepatch/shadow.o"}

// TestOriginalIsKbuilds: kelp's command for an object, known without
// building anything, is the command kbuild records when make builds it,
// and the object kelp compiles with it is kbuild's, byte for byte.
func TestOriginalIsKbuilds(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree, err := k.Tree(ctx)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	tree.ObjectCache = t.TempDir()
	built, err := k.Objects(ctx, originalObjects)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range originalObjects {
		cmd, err := tree.Command(name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := os.ReadFile(filepath.Join(tree.Dir, filepath.Dir(name), "."+filepath.Base(name)+".cmd"))
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(string(rec), "\n")
		if want := strings.TrimPrefix(line, "cmd_"+name+" := "); cmd != want {
			t.Errorf("%s: command\n%s\nkbuild recorded\n%s", name, cmd, want)
		}
		obj, _, hit, err := tree.Original(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if hit {
			t.Errorf("%s: found in an empty cache", name)
		}
		got, err := os.ReadFile(obj)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(built[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: kelp's original object (%d bytes) differs from kbuild's (%d bytes)", name, len(got), len(want))
		}
	}
}

// TestOriginalCache: the second request is served from the cache; an
// entry whose dependency no longer has its recorded content is compiled
// again.
func TestOriginalCache(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree, err := k.Tree(ctx)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	tree.ObjectCache = t.TempDir()
	const name = "fs/proc/version.o"
	first, _, hit, err := tree.Original(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if hit {
		t.Fatal("found in an empty cache")
	}
	again, _, hit, err := tree.Original(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !hit || again != first {
		t.Fatalf("second request: hit %v, %s (first %s)", hit, again, first)
	}
	entryFile := filepath.Join(filepath.Dir(first), "entry.json")
	data, err := os.ReadFile(entryFile)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Deps [][2]string `json:"deps"`
		CRCs map[string]uint32
	}
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	var hdr int
	for i, d := range e.Deps {
		if strings.HasSuffix(d[0], "include/linux/seq_file.h") {
			hdr = i
		}
	}
	if hdr == 0 || e.Deps[0][0] != "fs/proc/version.c" {
		t.Fatalf("dependencies do not name the source first and seq_file.h: %v", e.Deps[:min(3, len(e.Deps))])
	}
	// As if include/linux/seq_file.h had changed since.
	e.Deps[hdr][1] = strings.Repeat("0", 64)
	data, _ = json.Marshal(e)
	if err := os.WriteFile(entryFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, hit, err = tree.Original(ctx, name); err != nil {
		t.Fatal(err)
	}
	if hit {
		t.Fatal("an entry with a changed dependency was used")
	}
	if _, _, hit, err = tree.Original(ctx, name); err != nil || !hit {
		t.Fatalf("after recompiling: hit %v, %v", hit, err)
	}
}
