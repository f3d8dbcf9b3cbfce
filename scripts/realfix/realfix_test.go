package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeTree is a linux-source tarball of the given files.
func fakeTree(t *testing.T, files map[string]string) opener {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "linux-source-6.1/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "linux-source-6.1/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func lines(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s %d;\n", prefix, i)
	}
	return b.String()
}

func TestSelect(t *testing.T) {
	base := lines("int a", 20)
	old := fakeTree(t, map[string]string{
		"net/core/a.c":        base,
		"drivers/net/b.c":     lines("int b", 30),
		"arch/arm/kernel/c.c": base,
		"arch/x86/kernel/x.c": base,
		"fs/d.c":              base,
		"kernel/e.c":          base,
		"tools/perf/g.c":      base,
		"include/linux/h.h":   base,
		"mm/edge.c":           lines("int e", 50),
	})
	new := fakeTree(t, map[string]string{
		"net/core/a.c":        strings.Replace(base, "int a 3;", "long a 3;", 1),                  // 2 changed lines
		"drivers/net/b.c":     lines("long b", 30),                                                // 60: too large
		"arch/arm/kernel/c.c": base + "int c;\n",                                                  // another architecture
		"arch/x86/kernel/x.c": base + "int x;\n",                                                  // 1 line, amd64
		"fs/d.c":              base,                                                               // unchanged
		"mm/f.c":              base,                                                               // added
		"tools/perf/g.c":      base + "int g;\n",                                                  // userspace
		"include/linux/h.h":   base + "int h;\n",                                                  // not a .c file
		"mm/edge.c":           lines("int e", 30) + lines("long e", 20)[0:0] + lines("int z", 20), // 40: the most taken
	})
	sel, err := Select(old, new, "6.1.170-3", "6.1.176-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range sel.Patches {
		got = append(got, fmt.Sprintf("%s:%d", p.File, p.Changed))
	}
	want := []string{"arch/x86/kernel/x.c:1", "mm/edge.c:40", "net/core/a.c:2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patches %q; want %q", got, want)
	}
	for name, c := range map[string]struct{ got, want []string }{
		"too large":  {sel.TooLarge, []string{"drivers/net/b.c"}},
		"other arch": {sel.OtherArch, []string{"arch/arm/kernel/c.c", "tools/perf/g.c"}},
		"added":      {sel.Added, []string{"mm/f.c"}},
		"removed":    {sel.Removed, []string{"kernel/e.c"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %q; want %q", name, c.got, c.want)
		}
	}
	a := sel.Patches[2].Text
	for _, w := range []string{
		"Description: net/core/a.c as Debian's linux-source-6.1 6.1.176-1 has it, over 6.1.170-3\n",
		"\n--- a/net/core/a.c\n+++ b/net/core/a.c\n",
		"\n-int a 3;\n+long a 3;\n",
	} {
		if !strings.Contains(a, w) {
			t.Errorf("patch of net/core/a.c lacks %q:\n%s", w, a)
		}
	}
	// The patch applies to the old file and gives the new one.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net/core"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "net/core/a.c"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyPatch(dir, a); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "net/core/a.c"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != strings.Replace(base, "int a 3;", "long a 3;", 1) {
		t.Errorf("patched file:\n%s", data)
	}
}

func TestNames(t *testing.T) {
	if got := patchFileName("drivers/net/wireless/foo-bar.c"); got != "drivers_net_wireless_foo-bar.patch" {
		t.Errorf("patch file name %q", got)
	}
	long := moduleName(7, "drivers/gpu/drm/amd/display/dc/dcn32/dcn32_resource_helpers_and_more.c")
	if len(long) > 40 || !strings.HasPrefix(long, "rf007_dcn32_resource") {
		t.Errorf("module name %q", long)
	}
	if got := moduleName(12, "fs/ext4/super.c"); got != "rf012_super" {
		t.Errorf("module name %q", got)
	}
	if got := moduleName(781, "net/netfilter/xt_NFQUEUE.c"); got != "rf781_xt_nfqueue" {
		t.Errorf("module name %q", got)
	}
}

func TestJoin(t *testing.T) {
	classes, err := ReadClasses(strings.NewReader("# comment\n\nfs/a.c\ttrue-reason\tchanges existing data\nfs/b.c\tkelp-limitation\tcalls another module's export\nfs/gone.c\ttrue-reason\tno longer refused\n"))
	if err != nil {
		t.Fatal(err)
	}
	outs := []Outcome{
		{File: "fs/a.c", Build: BuildRefused, Configured: true, Message: "refused: data"},
		{File: "fs/b.c", Build: BuildRefused, Configured: true, Message: "refused: export"},
		{File: "fs/c.c", Build: BuildRefused, Configured: true, Message: "refused: new"},
		{File: "fs/d.c", Build: BuildOK, Configured: true, Load: "loaded", Funcs: []string{"vmlinux:d_fn,0"}},
		{File: "fs/d2.c", Build: BuildOK, Configured: true, Load: "loaded", Funcs: []string{"m:m_fn,0"}, LoadLog: "modprobe m failed: no such device m not loaded"},
		{File: "fs/e.c", Build: BuildOK, Configured: true, Load: "failed", LoadLog: "kernel refused"},
		{File: "fs/f.c", Build: BuildCompile, Configured: true},
		{File: "arch/x86/g.c", Build: BuildRefused, Configured: false, Message: "refused: symbol not found"},
		{File: "arch/x86/h.c", Build: BuildOK, Configured: false, Load: "loaded"},
	}
	rows, stale := Join(outs, classes)
	var got []string
	for _, r := range rows {
		got = append(got, r.File+"="+r.Class)
	}
	want := []string{
		"fs/a.c=" + ClassTrue, "fs/b.c=" + ClassLimitation, "fs/c.c=" + ClassUnclassfied,
		"fs/d.c=" + ClassLoaded, "fs/d2.c=" + ClassLoaded, "fs/e.c=" + ClassLoadFailed, "fs/f.c=" + ClassNoCompile,
		"arch/x86/g.c=" + ClassNotBuilt, "arch/x86/h.c=" + ClassNotBuilt,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("classes\n%q\nwant\n%q", got, want)
	}
	if !reflect.DeepEqual(stale, []string{"fs/gone.c"}) {
		t.Errorf("stale classifications %q", stale)
	}
	if !strings.Contains(rows[8].Reason, "does not build") {
		t.Errorf("a module built for an unconfigured object is not flagged: %q", rows[8].Reason)
	}
	s := Summarize(rows)
	if s.Total != 9 || s.CompileAlone != 6 || s.ByClass[ClassLoaded] != 2 || s.TargetNotLoaded != 1 || s.Rate() != 100*2.0/6 {
		t.Errorf("summary %+v, rate %.1f", s, s.Rate())
	}
	doc := Table(rows, s, TableInfo{Old: "6.1.170-3", New: "6.1.176-1", Kernel: "6.1.0-47-amd64", Every: 3, Patches: 24, Boots: 2})
	for _, w := range []string{
		"| **compile alone** (object built by the config, the fix compiles without the rest of its series) | **6** |",
		"Built and loaded: 2 of the 6 fixes that compile alone (33.3 %",
		"Of those built and loaded, 1 patch a module that was not loaded in the guest",
		"boots under QEMU (2 boots, each carrying",
		"one patch in every 3 of the 24",
		"| `fs/a.c` | 0 | " + ClassTrue + " | refused: data — **changes existing data** |",
		"| `fs/d.c` | 0 | " + ClassLoaded + " | patched vmlinux:d_fn,0 |",
	} {
		if !strings.Contains(doc, w) {
			t.Errorf("table lacks %q:\n%s", w, doc)
		}
	}
	if strings.Contains(doc, "Reused builds") {
		t.Errorf("a run whose builds are all its own says some are reused")
	}
	for _, bad := range []string{
		"f.c\ttrue-reason\n",                         // no reason
		"f.c\tmaybe\tsomething\n",                    // unknown class
		"f.c\ttrue-reason\tx\nf.c\ttrue-reason\ty\n", // twice
	} {
		if _, err := ReadClasses(strings.NewReader(bad)); err == nil {
			t.Errorf("classes %q accepted", bad)
		}
	}
}

// applyPatch applies a -p1 patch in dir with patch(1).
func applyPatch(dir, text string) error {
	cmd := exec.Command("patch", "-p1", "--batch", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("patch: %v: %s", err, out)
	}
	return nil
}

// TestClassesFile: the committed classification parses, and each entry
// names a file of amd64 kernel code the generator can select.
func TestClassesFile(t *testing.T) {
	f, err := os.Open("classes.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	classes, err := ReadClasses(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) == 0 {
		t.Fatal("classes.tsv classifies nothing")
	}
	for file := range classes {
		if !strings.HasSuffix(file, ".c") || !amd64Code(file) {
			t.Errorf("%s: not a .c file of amd64 kernel code", file)
		}
	}
}

// TestReused: the table says how many build results a -reuse run took
// from an earlier run, and from which kelp.
func TestReused(t *testing.T) {
	rows := []Row{
		{Outcome: Outcome{File: "a.c", Kelp: "new"}},
		{Outcome: Outcome{File: "b.c"}},
		{Outcome: Outcome{File: "c.c", Kelp: "old"}},
		{Outcome: Outcome{File: "d.c", Kelp: "old"}},
	}
	n, from := reused(rows, "new")
	if want := "a kelp that did not record its version: 1, kelp `old`: 2"; n != 3 || from != want {
		t.Errorf("reused = %d, %q; want 3, %q", n, from, want)
	}
	doc := Table(rows, Summarize(rows), TableInfo{Kelp: "new"})
	if !strings.Contains(doc, "**Reused builds:** the build results of 3 of the fixes are an earlier run's") {
		t.Errorf("table does not say 3 builds are reused:\n%s", doc)
	}
}
