package ktree

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtractXz: a multi-block xz tarball, as Debian ships the kernel
// source, extracts with extractArgs (xz on every core) to the same files,
// but Documentation's text and other architectures' sources (not their
// headers and Kconfig files).
func TestExtractXz(t *testing.T) {
	for _, tool := range []string{"tar", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	src := t.TempDir()
	files := map[string]string{"linux-source-6.1/Makefile": "all:\n", "linux-source-6.1/fs/proc/cmdline.c": "int x;\n",
		"linux-source-6.1/Documentation/Kconfig": "config WARN_MISSING_DOCUMENTS\n", "linux-source-6.1/arch/Kconfig": "config A\n",
		"linux-source-6.1/arch/x86/Kconfig": "config X86\n", "linux-source-6.1/arch/x86/kernel/setup.c": "int s;\n",
		"linux-source-6.1/arch/arm/crypto/Kconfig": "config CRYPTO_SHA1_ARM\n", "linux-source-6.1/arch/arm64/Kconfig": "config ARM64\n",
		"linux-source-6.1/tools/arch/arm64/include/asm/barrier.h": "#define B\n",
		"linux-source-6.1/drivers/staging/Documentation/x.txt":    "kept\n",
		"linux-source-6.1/arch/alpha/kernel/pci_impl.h":           "#define ALPHA\n"}
	left := []string{"linux-source-6.1/Documentation/admin-guide/README.rst", "linux-source-6.1/Documentation/arch/x86/boot.rst",
		"linux-source-6.1/Documentation/devicetree/bindings/x.yaml", "linux-source-6.1/Documentation/index.rst",
		"linux-source-6.1/arch/arm/kernel/setup.c", "linux-source-6.1/arch/arm64/boot/dts/arm/x.dts",
		"linux-source-6.1/arch/um/kernel/x.c", "linux-source-6.1/arch/mips/kernel/head.S"}
	all := maps.Clone(files)
	for _, p := range left {
		all[p] = "left out\n"
	}
	for p, body := range all {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(t.TempDir(), "linux-source-6.1.tar.xz")
	// Small blocks: several of them, as in the distribution's tarball.
	cmd := exec.Command("tar", "-C", src, "--use-compress-program=xz -T2 --block-size=16", "-cf", tarball, "linux-source-6.1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	top := topDir(context.Background(), tarball)
	if top != "linux-source-6.1" {
		t.Fatalf("topDir(%s) = %q", tarball, top)
	}
	args := extractArgs(tarball, top, "x86")
	if args[0] != "--use-compress-program=xz -T0" {
		t.Fatalf("extractArgs(%s) = %q: xz does not decompress in parallel", tarball, args)
	}
	dst := t.TempDir()
	if err := run(context.Background(), nil, dst, "tar", args...); err != nil {
		t.Fatal(err)
	}
	for p, body := range files {
		got, err := os.ReadFile(filepath.Join(dst, strings.TrimPrefix(p, "linux-source-6.1/")))
		if err != nil || string(got) != body {
			t.Errorf("%s: %q, %v; want %q", p, got, err, body)
		}
	}
	for _, p := range left {
		if _, err := os.Lstat(filepath.Join(dst, strings.TrimPrefix(p, "linux-source-6.1/"))); !os.IsNotExist(err) {
			t.Errorf("%s: extracted (%v), want it left out", p, err)
		}
	}
	// An unknown architecture keeps every arch/ directory, an unknown
	// top directory everything.
	for _, a := range extractArgs(tarball, top, "") {
		if strings.Contains(a, "/arch/") {
			t.Errorf("no architecture: %q left out", a)
		}
	}
	if a := extractArgs(tarball, "", "x86"); len(a) != 4 {
		t.Errorf("no top directory: %q", a)
	}
	if top := topDir(context.Background(), filepath.Join(t.TempDir(), "none.tar.xz")); top != "" {
		t.Errorf("topDir of no tarball = %q", top)
	}
	if a := extractArgs("/x/linux-source-6.1.tar.gz", top, "x86"); a[0] != "-xf" {
		t.Errorf("a gzip tarball: %q", a)
	}
}

// TestTargetObjtool: the target's objtool is taken when its kbuild
// directory has one that runs, the architecture's own where the package
// ships one per architecture behind a dispatcher.
func TestTargetObjtool(t *testing.T) {
	dir := t.TempDir()
	if p := targetObjtool(dir, "x86"); p != "" {
		t.Errorf("no objtool: %q", p)
	}
	p := filepath.Join(dir, "tools", "objtool", "objtool")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("\x7fELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := targetObjtool(dir, "x86"); got != "" {
		t.Errorf("an objtool that does not run: %q", got)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := targetObjtool(dir, "x86"); got != p {
		t.Errorf("targetObjtool = %q, want %q", got, p)
	}
	for _, a := range []string{"x86", "powerpc"} {
		if err := os.WriteFile(p+".real-"+a, []byte("\x7fELF"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := targetObjtool(dir, "x86"); got != p+".real-x86" {
		t.Errorf("beside objtool.real-x86: targetObjtool = %q, want it", got)
	}
	if got := targetObjtool(dir, ""); got != p {
		t.Errorf("no architecture: targetObjtool = %q, want %q", got, p)
	}
}
