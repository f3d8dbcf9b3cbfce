package sys

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountsUnder(t *testing.T) {
	table := []byte(`22 1 0:21 / /proc rw,nosuid - proc proc rw
25 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 25 0:5 / /c/root/dev rw - devtmpfs udev rw
31 25 253:0 /work /c/root/work rw - ext4 /dev/vda rw
32 25 0:40 / /c/root\040two/proc rw - proc proc rw
33 25 0:41 / /c/rootless rw - tmpfs tmpfs rw
34 25 0:42 / /c/root rw - tmpfs tmpfs rw
short line
`)
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{"/c/root", []string{"/c/root/dev", "/c/root/work", "/c/root"}},
		{"/c/root/", []string{"/c/root/dev", "/c/root/work", "/c/root"}},
		{"/c/root two", []string{"/c/root two/proc"}},
		{"/c/root/dev/pts", nil},
		{"/elsewhere", nil},
	} {
		if got := MountsUnder(table, c.dir); !reflect.DeepEqual(got, c.want) {
			t.Errorf("MountsUnder(%q) = %q, want %q", c.dir, got, c.want)
		}
	}
}

// TestRemoveAllKeepsMounts: a directory with a file system mounted below
// it (a bind of another directory of the same file system, as a chroot's
// /dev or working directory is bound, and a tmpfs) is refused, and
// nothing is removed: neither what the mounts show nor the directory's
// own files. os.RemoveAll, in the same place, deletes the bound
// directory's files (the hazard). Unmounted, it is removed.
func TestRemoveAllKeepsMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting needs root")
		}
		t.Skip("mounting needs root (CI would fail)")
	}
	tmp := t.TempDir()
	host := filepath.Join(tmp, "host-dev")
	cache := filepath.Join(tmp, "cache")
	root := filepath.Join(cache, "root")
	for _, d := range []string{host, filepath.Join(root, "dev"), filepath.Join(root, "proc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(host, "null"))
	write(filepath.Join(root, "own-file"))
	mounted := map[string]bool{}
	mount := func(src, dst, fstype string, flags uintptr) {
		t.Helper()
		if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
			t.Fatalf("mount %s: %v", dst, err)
		}
		mounted[dst] = true
	}
	unmount := func(dst string) {
		t.Helper()
		if err := unix.Unmount(dst, 0); err != nil {
			t.Fatalf("umount %s: %v", dst, err)
		}
		delete(mounted, dst)
	}
	t.Cleanup(func() {
		for dst := range mounted {
			unix.Unmount(dst, unix.MNT_DETACH)
		}
	})
	mount(host, filepath.Join(root, "dev"), "", unix.MS_BIND)
	mount("kelp-test", filepath.Join(root, "proc"), "tmpfs", 0)
	write(filepath.Join(root, "proc", "in-tmpfs"))

	err := RemoveAll(cache)
	if err == nil {
		t.Fatal("RemoveAll removed a directory with file systems mounted below it")
	}
	for _, want := range []string{cache, filepath.Join(root, "dev"), filepath.Join(root, "proc"), "umount -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	for _, p := range []string{filepath.Join(host, "null"), filepath.Join(root, "own-file"), filepath.Join(root, "proc", "in-tmpfs")} {
		if _, serr := os.Stat(p); serr != nil {
			t.Errorf("%s after the refusal: %v", p, serr)
		}
	}

	// The hazard: a plain recursive removal goes through the bind.
	unmount(filepath.Join(root, "proc"))
	os.RemoveAll(cache)
	if _, serr := os.Stat(filepath.Join(host, "null")); !os.IsNotExist(serr) {
		t.Fatalf("os.RemoveAll through the bind left the bound directory's file (stat: %v): the test shows nothing", serr)
	}

	unmount(filepath.Join(root, "dev"))
	if err := RemoveAll(cache); err != nil {
		t.Fatalf("RemoveAll with nothing mounted: %v", err)
	}
	if _, serr := os.Stat(cache); !os.IsNotExist(serr) {
		t.Errorf("%s still there after RemoveAll: %v", cache, serr)
	}
	if err := RemoveAll(filepath.Join(tmp, "never-made")); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
}
