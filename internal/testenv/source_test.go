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

// TestDefaultKernelOfSource: with two kernels installed, the default is
// the one whose image package has the installed linux-source-6.1's
// version (a triple pinned with KELP_KERNEL_VERSION beside a newer
// image), else the newest.
func TestDefaultKernelOfSource(t *testing.T) {
	old, oldVersion := root, packageVersion
	root = t.TempDir()
	defer func() { root, packageVersion = old, oldVersion }()
	t.Setenv(EnvKernel, "")
	for _, rel := range []string{"6.1.0-47-amd64", "6.1.0-57-amd64"} {
		for _, f := range []string{"boot/vmlinuz-" + rel, "boot/config-" + rel, "lib/modules/" + rel + "/modules.dep",
			"usr/src/linux-headers-" + rel + "/Makefile", "usr/src/linux-source-6.1.tar.xz"} {
			p := filepath.Join(root, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		versions map[string]string
		want     string
	}{
		{map[string]string{"linux-source-6.1": "6.1.170-3", "linux-image-6.1.0-47-amd64": "6.1.170-3", "linux-image-6.1.0-57-amd64": "6.1.192-3"}, "6.1.0-47-amd64"},
		{map[string]string{"linux-source-6.1": "6.1.192-3", "linux-image-6.1.0-47-amd64": "6.1.170-3", "linux-image-6.1.0-57-amd64": "6.1.192-3"}, "6.1.0-57-amd64"},
		{map[string]string{}, "6.1.0-57-amd64"},
		{map[string]string{"linux-source-6.1": "6.1.180-1", "linux-image-6.1.0-47-amd64": "6.1.170-3"}, "6.1.0-57-amd64"},
	} {
		packageVersion = func(pkg string) string { return c.versions[pkg] }
		k, err := DefaultKernel()
		if err != nil {
			t.Fatalf("%v: %v", c.versions, err)
		}
		if k.Release != c.want {
			t.Errorf("packages %v: default kernel %s, want %s", c.versions, k.Release, c.want)
		}
	}
}
