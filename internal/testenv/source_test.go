package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSourceTreePrepared(t *testing.T) {
	k := RequireKernel(t)
	dir, err := k.SourceTree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// modules_prepare leaves the generated headers a kbuild object
	// compilation needs.
	for _, f := range []string{"include/generated/autoconf.h", "include/config/auto.conf", "scripts/mod/modpost"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("prepared tree lacks %s: %v", f, err)
		}
	}
	auto, err := os.ReadFile(filepath.Join(dir, "include/config/auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(auto), "CONFIG_LIVEPATCH=y") {
		t.Errorf("prepared tree config lacks CONFIG_LIVEPATCH=y")
	}
}

func TestDefaultKernelMissing(t *testing.T) {
	old := root
	root = t.TempDir()
	defer func() { root = old }()
	t.Setenv(EnvKernel, "")
	_, err := DefaultKernel()
	if err == nil || !strings.Contains(err.Error(), "linux-image") {
		t.Fatalf("want an error naming the linux-image package, got %v", err)
	}
}
