package ktree

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtractXz: a multi-block xz tarball, as Debian ships the kernel
// source, extracts with extractArgs (xz on every core) to the same files.
func TestExtractXz(t *testing.T) {
	for _, tool := range []string{"tar", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	src := t.TempDir()
	files := map[string]string{"linux-source-6.1/Makefile": "all:\n", "linux-source-6.1/fs/proc/cmdline.c": "int x;\n"}
	for p, body := range files {
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
	args := extractArgs(tarball)
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
	if a := extractArgs("/x/linux-source-6.1.tar.gz"); a[0] != "-xf" {
		t.Errorf("a gzip tarball: %q", a)
	}
}
