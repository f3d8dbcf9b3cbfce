package buildroot_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/internal/testenv"
)

// TestRootHasOwnDev: a command in the trixie build root make deps
// prepares finds the device nodes programs expect, and what it does to
// /dev (a package script that replaces /dev/null) never reaches the
// host's /dev.
func TestRootHasOwnDev(t *testing.T) {
	dir, err := buildroot.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	r := &buildroot.Root{Dir: filepath.Join(dir, "trixie"), Suite: "trixie"}
	if _, err := os.Stat(filepath.Join(r.Dir, ".kelp-complete")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no trixie build root (make deps): %v", err)
		}
		t.Skipf("no trixie build root (make deps; CI would fail): %v", err)
	}
	testenv.GuardHostNull(t)
	out, err := r.Run(context.Background(), "/", "/bin/sh", "-c", testenv.DevProbe)
	if err != nil || out != testenv.DevProbeWant {
		t.Fatalf("in the root: %q, %v; want %q", out, err, testenv.DevProbeWant)
	}
}
