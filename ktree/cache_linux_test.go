package ktree

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCachedKeepsMounts: a cache entry that did not complete is built
// again from scratch, but when a killed process left a mount in it (a
// chroot's /dev bound from the host), Cached refuses and removes
// nothing, so the host's files the bind shows survive; the build does
// not run. Without a mount, the leftover is replaced and the build runs.
func TestCachedKeepsMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting needs root")
		}
		t.Skip("mounting needs root (CI would fail)")
	}
	tmp := t.TempDir()
	host := filepath.Join(tmp, "host-dev")
	entry := filepath.Join(tmp, "cache", "image")
	dev := filepath.Join(entry, "root", "dev")
	for _, d := range []string{host, dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostNull := filepath.Join(host, "null")
	if err := os.WriteFile(hostNull, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, dev, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind: %v", err)
	}
	bound := true
	t.Cleanup(func() {
		if bound {
			unix.Unmount(dev, unix.MNT_DETACH)
		}
	})
	built := 0
	build := func(dir string) error {
		built++
		return os.WriteFile(filepath.Join(dir, "made"), nil, 0o644)
	}
	_, err := Cached(entry, build)
	if err == nil || !strings.Contains(err.Error(), dev) {
		t.Fatalf("Cached with a bind left in the unfinished entry: err = %v, want a refusal naming %s", err, dev)
	}
	if built != 0 {
		t.Errorf("the build ran %d time(s) after the refusal", built)
	}
	if _, serr := os.Stat(hostNull); serr != nil {
		t.Fatalf("the bound directory's file after the refusal: %v", serr)
	}

	if err := unix.Unmount(dev, 0); err != nil {
		t.Fatal(err)
	}
	bound = false
	dir, err := Cached(entry, build)
	if err != nil {
		t.Fatalf("Cached with nothing mounted: %v", err)
	}
	if built != 1 {
		t.Errorf("build ran %d times, want 1", built)
	}
	if _, serr := os.Stat(filepath.Join(dir, "root")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the unfinished attempt's files were kept (stat root: %v)", serr)
	}
	if _, serr := os.Stat(filepath.Join(dir, "made")); serr != nil {
		t.Errorf("the build's file: %v", serr)
	}
	if _, serr := os.Stat(hostNull); serr != nil {
		t.Errorf("the host directory's file: %v", serr)
	}
}
