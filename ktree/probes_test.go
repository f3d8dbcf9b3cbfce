package ktree

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCheckNull: the host's /dev/null passes; a regular file in its
// place (what a script run as root can leave) and a missing one are
// refused, naming the path and how to restore it.
func TestCheckNull(t *testing.T) {
	if err := checkNull(nullDevice); err != nil {
		t.Fatalf("the host's %s: %v", nullDevice, err)
	}
	file := filepath.Join(t.TempDir(), "null")
	if err := os.WriteFile(file, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := checkNull(file)
	if err == nil || !strings.Contains(err.Error(), file+" is not the null device") || !strings.Contains(err.Error(), "mknod -m 666 "+file+" c 1 3") {
		t.Errorf("a regular file: %v", err)
	}
	if err := checkNull(file + ".missing"); err == nil {
		t.Error("a missing null device is accepted")
	}
	// /dev/zero is a character device, but not the null device.
	if err := checkNull("/dev/zero"); err == nil {
		t.Error("/dev/zero is accepted as the null device")
	}
}

// TestCheckPrepared: a prepared tree in which an option the kernel's
// config turns on is off (a compiler probe that failed turns
// CONFIG_CC_HAS_* off) or changed from m to y is refused, naming both
// values; strings and numbers (the compiler's name, the build salt, the
// certificate files kelp empties) and options the kernel's config does
// not turn on are not differences.
func TestCheckPrepared(t *testing.T) {
	kernel := []byte("CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\nCONFIG_CC_HAS_RETURN_THUNK=y\nCONFIG_EXT4_FS=m\nCONFIG_BUILD_SALT=\"6.1.0-57-cloud-amd64\"\nCONFIG_HZ=250\n# CONFIG_KASAN is not set\nCONFIG_SYSTEM_TRUSTED_KEYS=\"debian/certs/debian-uefi-certs.pem\"\n")
	dir := t.TempDir()
	for _, c := range []struct {
		what, tree, extra string
		want              []string // what the refusal names; none: accepted
	}{
		{what: "a tree with only allowed differences",
			tree: "CONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\nCONFIG_CC_HAS_RETURN_THUNK=y\nCONFIG_EXT4_FS=m\nCONFIG_BUILD_SALT=\"\"\nCONFIG_HZ=250\nCONFIG_MODULE_SIG_ALL=y\nCONFIG_SYSTEM_TRUSTED_KEYS=\"\"\n"},
		{what: "a tree that lost and changed options",
			tree: "CONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\n# CONFIG_CC_HAS_RETURN_THUNK is not set\nCONFIG_EXT4_FS=y\nCONFIG_HZ=250\n",
			want: []string{"CONFIG_CC_HAS_RETURN_THUNK=y became not set", "CONFIG_EXT4_FS=m became y"}},
		// The last line of a config need not end in a newline.
		{what: "a tree whose last line has no newline", tree: "CONFIG_CC_HAS_RETURN_THUNK=y\nCONFIG_EXT4_FS=m"},
		{what: "a kernel config whose last line, with no newline, the tree lacks",
			tree: "CONFIG_CC_HAS_RETURN_THUNK=y\nCONFIG_EXT4_FS=m", extra: "CONFIG_KELP_LAST=m",
			want: []string{"CONFIG_KELP_LAST=m became not set"}},
		// Options in another order than the kernel's config are found;
		// one missing after the order broke is still named.
		{what: "a tree listing the options in another order", tree: "CONFIG_EXT4_FS=m\nCONFIG_CC_HAS_RETURN_THUNK=y\n"},
		{what: "options missing after the order broke",
			tree: "CONFIG_EXT4_FS=m\nCONFIG_CC_HAS_RETURN_THUNK=y\n", extra: "CONFIG_KELP_A=y\nCONFIG_KELP_B=m\n",
			want: []string{"CONFIG_KELP_A=y became not set, CONFIG_KELP_B=m became not set"}},
	} {
		if err := os.WriteFile(filepath.Join(dir, ".config"), []byte(c.tree), 0o644); err != nil {
			t.Fatal(err)
		}
		err := checkPrepared(dir, append(slices.Clone(kernel), c.extra...))
		switch {
		case len(c.want) == 0 && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case len(c.want) > 0 && err == nil:
			t.Errorf("%s: accepted", c.what)
		}
		for _, w := range c.want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want it to name %q", c.what, err, w)
			}
		}
	}
	if err := checkPrepared(filepath.Join(dir, "none"), kernel); err == nil {
		t.Error("a tree without a .config is accepted")
	}
}
