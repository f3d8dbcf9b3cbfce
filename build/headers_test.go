package build_test

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
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

// TestDumpVersion: a symbols dump names the Debian build of its kernel
// (one release is shipped by several builds); kelp build takes the
// headers and config of that build. The installed headers' build builds
// with them; another build's headers are fetched, and a build the apt
// sources no longer offer is refused naming both versions, before any
// compile.
func TestDumpVersion(t *testing.T) {
	k := testenv.RequireKernelOf(t, testenv.Cloud61Kernel)
	ctx := context.Background()
	installed, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "linux-headers-"+k.Release).Output()
	if err != nil {
		t.Fatalf("linux-headers-%s is not installed: %v", k.Release, err)
	}
	dump, err := os.ReadFile(ksymtest.KallsymsPath(t, k))
	if err != nil {
		t.Fatal(err)
	}
	hdr, ok, err := ksym.ReadDumpHeader(dump)
	if err != nil || !ok {
		t.Fatalf("dump of %s has no header: %v", k.Release, err)
	}
	// kelp symbols, run in the guest on the Debian kernel, read its build.
	if hdr.Version != string(installed) {
		t.Errorf("kelp symbols on %s recorded Debian version %q; its packages are %s", k.Release, hdr.Version, installed)
	}
	withVersion := func(v string) string {
		h := hdr
		h.Version = v
		_, body, _ := bytes.Cut(dump, []byte("\n"))
		p := filepath.Join(t.TempDir(), "kallsyms")
		if err := os.WriteFile(p, append([]byte(h.String()+"\n"), body...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	opts := buildOptions(t, k, t.TempDir(), "../testdata/patches/cmdline-string.patch")
	opts.Tree.Headers, opts.Tree.Config = "", "" // the defaults: installed, or fetched

	opts.Symbols = withVersion(string(installed))
	var steps, stages []string
	opts.Progress = func(e build.Event) { steps, stages = append(steps, e.Message), append(stages, e.Stage) }
	res, err := build.Build(ctx, opts)
	if err != nil {
		t.Fatalf("dump of the installed build %s: %v", installed, err)
	}
	if s := strings.Join(steps, "\n"); strings.Contains(s, "fetching linux-headers") {
		t.Errorf("the installed build's headers were fetched: %q", steps)
	}
	if _, err := os.Stat(res.Module); err != nil || !slices.Contains(stages, "compile") {
		t.Errorf("module %s (%v), stages %q", res.Module, err, stages)
	}

	gone := "6.1.0-1" // a build of no apt source
	opts.Symbols = withVersion(gone)
	opts.OutDir = t.TempDir()
	steps, stages = nil, nil
	_, err = build.Build(ctx, opts)
	for _, want := range []string{"Debian build " + gone, "installed headers of " + string(installed), "apt-get download linux-headers-" + k.Release + "=" + gone} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dump of build %s: %v; want an error naming %q", gone, err, want)
		}
	}
	if slices.Contains(stages, "compile") {
		t.Errorf("compiled before refusing: stages %q", stages)
	}
}

// TestDumpBuildID: a dump whose build id is not the one of the target's
// kernel image (another build of the same release) is refused naming
// both, before any compile.
func TestDumpBuildID(t *testing.T) {
	k := testenv.RequireKernel(t)
	dump, hdr := imageDump(t, k)
	other := hdr
	other.BuildID = strings.Repeat("ab", 20)
	_, body, _ := bytes.Cut(dump, []byte("\n"))
	p := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(p, append([]byte(other.String()+"\n"), body...), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := buildOptions(t, k, t.TempDir(), "../testdata/patches/cmdline-string.patch")
	opts.Symbols = p
	var stages []string
	opts.Progress = func(e build.Event) { stages = append(stages, e.Stage) }
	_, err := build.Build(context.Background(), opts)
	for _, want := range []string{"build id " + other.BuildID, "has build id " + hdr.BuildID, "another build of the same release"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dump of another build: %v; want an error naming %q", err, want)
		}
	}
	if slices.Contains(stages, "compile") {
		t.Errorf("compiled before refusing: stages %q", stages)
	}
}

// imageDump is the test kernel's kallsyms dump and its header, which
// names a build id, with the kernel's image installed to check it against.
func imageDump(t *testing.T, k *testenv.Kernel) ([]byte, ksym.DumpHeader) {
	t.Helper()
	if _, err := os.Stat("/boot/vmlinuz-" + k.Release); err != nil {
		t.Fatalf("the test kernel's image is not installed: %v", err)
	}
	dump, err := os.ReadFile(ksymtest.KallsymsPath(t, k))
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, err := ksym.ReadDumpHeader(dump)
	if err != nil || hdr.BuildID == "" {
		t.Fatalf("dump of %s: %+v, %v", k.Release, hdr, err)
	}
	return dump, hdr
}

// TestImageIDBesideTree: the build id of the target's kernel image, which
// a dump's build id is checked against, is read while the tree stage runs
// (on a first build, while the tree is extracted and prepared), once, and
// the build records the dump's build id it matched.
func TestImageIDBesideTree(t *testing.T) {
	k := testenv.RequireKernel(t)
	image := "/boot/vmlinuz-" + k.Release
	_, hdr := imageDump(t, k)
	var mu sync.Mutex
	var events []string
	note := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	*build.ImageIDStarted = func(image string) { note("image " + image) }
	t.Cleanup(func() { *build.ImageIDStarted = nil })
	opts := buildOptions(t, k, t.TempDir(), "../testdata/patches/cmdline-string.patch")
	opts.Progress = func(e build.Event) {
		if e.Done {
			note("done " + e.Stage)
		}
	}
	res, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.SymbolsBuildID != hdr.BuildID {
		t.Errorf("symbols build id %q, the dump's is %q", res.SymbolsBuildID, hdr.BuildID)
	}
	mu.Lock()
	defer mu.Unlock()
	read, tree := slices.Index(events, "image "+image), slices.Index(events, "done tree")
	if read < 0 || tree < 0 || read > tree || slices.Index(events[read+1:], "image "+image) >= 0 {
		t.Errorf("events %q: want %q once, before the tree stage is done", events, "image "+image)
	}
}

// TestDumpBodyBroken: a dump whose header names the target but whose
// table is cut short is refused naming the file, and no module is
// written (the table is read while the objects compile).
func TestDumpBodyBroken(t *testing.T) {
	k := testenv.RequireKernel(t)
	dump, err := os.ReadFile(ksymtest.KallsymsPath(t, k))
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(dump, []byte("\n"))
	p := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(p, append(head, "\nffffffff81000000 T _text\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	opts := buildOptions(t, k, out, "../testdata/patches/cmdline-string.patch")
	opts.Symbols = p
	res, err := build.Build(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "symbols "+p+": not a kallsyms dump") {
		t.Fatalf("dump with 1 symbol: %v; want it refused as not a kallsyms dump", err)
	}
	if res != nil && res.Module != "" {
		t.Errorf("module %s reported after the refusal", res.Module)
	}
	if ents, err := os.ReadDir(out); err != nil || len(ents) != 0 {
		t.Errorf("output directory after the refusal: %v, %v; want it empty", ents, err)
	}
}
