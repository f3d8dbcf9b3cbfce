package build_test

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
)

// TestFetchedHeaders builds for a kernel whose headers package is not
// where the build machine would have installed it (an empty system root):
// kelp fetches linux-headers-<release>, its common headers and
// linux-kbuild of the kernel's version into its cache, takes the config
// from them, and the module is the one built with the installed headers,
// section for section (the debug line tables name the headers' directory,
// and the build id hashes them: the only differences). A second build finds them in the cache.
func TestFetchedHeaders(t *testing.T) {
	k := testenv.RequireKernelOf(t, testenv.Cloud61Kernel)
	ctx := context.Background()
	installed := buildOptions(t, k, t.TempDir(), "../testdata/patches/cmdline-string.patch")
	want, err := build.Build(ctx, installed)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	fetched := installed
	fetched.OutDir = t.TempDir()
	fetched.Tree.Headers, fetched.Tree.Config = "", ""
	fetched.Tree.Root = t.TempDir() // no /boot, no /usr/src
	fetched.Tree.CacheDir = filepath.Join(cache, "trees")
	for i := range 2 {
		var steps []string
		fetched.Progress = func(e build.Event) { steps = append(steps, e.Message) }
		got, err := build.Build(ctx, fetched)
		if err != nil {
			t.Fatal(err)
		}
		fetching := strings.Contains(strings.Join(steps, "\n"), "fetching linux-headers-"+k.Release)
		if i == 1 && fetching {
			t.Errorf("second build fetched the headers again: %q", steps)
		}
		a, b := sectionsOf(t, want.Module), sectionsOf(t, got.Module)
		if len(a) != len(b) || len(a) < 10 {
			t.Errorf("build %d: %d sections with fetched headers, %d with the installed ones", i+1, len(b), len(a))
		}
		for name, data := range a {
			if !bytes.Equal(data, b[name]) {
				t.Errorf("build %d: section %s differs between the fetched and the installed headers", i+1, name)
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "headers", k.Release+"_*", "usr/src/linux-headers-"+k.Release))
	if len(dirs) != 1 {
		t.Fatalf("fetched headers of %s: %q", k.Release, dirs)
	}
	for _, f := range []string{"Module.symvers", ".config"} {
		a, err := os.ReadFile(filepath.Join(k.Headers, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[0], f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("fetched %s differs from the installed headers' one", f)
		}
	}
}

// sectionsOf returns the contents of a module's sections by name, but for
// the debug information and the build id (a hash that covers it).
func sectionsOf(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	for _, s := range f.Sections {
		if strings.Contains(s.Name, ".debug") || s.Name == ".note.gnu.build-id" || s.Type == elf.SHT_NOBITS {
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatalf("%s: %s: %v", path, s.Name, err)
		}
		out[s.Name] = data
	}
	return out
}
