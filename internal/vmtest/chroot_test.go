package vmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestChrootHasOwnDev: the chroot the system image's packages are
// installed in (here a root of a static busybox) finds the device nodes
// programs expect, and what a command there does to /dev (a package
// script that replaces /dev/null) never reaches the host's /dev; nothing
// stays mounted in the root afterwards.
func TestChrootHasOwnDev(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the chroot needs root")
		}
		t.Skip("the chroot needs root (CI would fail)")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: "busybox", Package: "busybox-static"})
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(bb, filepath.Join(root, "bin", "busybox")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "test", "echo", "rm", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.GuardHostNull(t)
	if err := inChroot(context.Background(), root, "/bin/sh", "-c", "("+testenv.DevProbe+") > /result 2>&1"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "result"))
	if err != nil || string(got) != testenv.DevProbeWant {
		t.Errorf("in the chroot: %q, %v; want %q", got, err, testenv.DevProbeWant)
	}
	for _, d := range []string{"proc", "sys", "dev"} {
		if es, err := os.ReadDir(filepath.Join(root, d)); err != nil || len(es) > 0 {
			t.Errorf("%s of the root after the chroot: %d entries, %v; want an empty directory", d, len(es), err)
		}
	}
}
