package kmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTakenNames(t *testing.T) {
	dir := t.TempDir()
	if _, found, err := ReadTakenNames(dir); found || err != nil {
		t.Errorf("empty dir: found %v, err %v", found, err)
	}
	files := map[string]string{
		"modules.builtin":         "kernel/arch/x86/crypto/libblake2s-x86_64.ko\nkernel/fs/ext4/ext4.ko\n",
		"modules.dep":             "kernel/drivers/net/dummy.ko:\nkernel/fs/nls/nls_utf8.ko.xz: kernel/fs/nls/nls_base.ko\nkernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko\n",
		"modules.builtin.modinfo": "printk.time=1\x00printk.parmtype=time:bool\x00kfence.sample_interval=100\x00",
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names, found, err := ReadTakenNames(dir)
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	for name, where := range map[string]string{
		"libblake2s_x86_64": "built into the kernel as kernel/arch/x86/crypto/libblake2s-x86_64.ko",
		"ext4":              "built into the kernel",
		"dummy":             "shipped as kernel/drivers/net/dummy.ko",
		"nls_utf8":          "shipped as kernel/fs/nls/nls_utf8.ko.xz",
		"printk":            "modules.builtin.modinfo",
		"kfence":            "modules.builtin.modinfo",
	} {
		if got, ok := names.Where(name); !ok || !strings.Contains(got, where) {
			t.Errorf("%s: %q, %v; want %q", name, got, ok, where)
		}
	}
	if names.Len() != 6 {
		t.Errorf("%d names; want 6", names.Len())
	}
	// The first list naming a module says where it comes from; a name
	// added later does not replace it, and '-' is '_' in a name.
	names.Add("ext4", "elsewhere")
	names.Add("kelp-new", "a test")
	for name, want := range map[string]string{
		"ext4":              "built into the kernel as kernel/fs/ext4/ext4.ko (modules.builtin)",
		"libblake2s_x86_64": "built into the kernel as kernel/arch/x86/crypto/libblake2s-x86_64.ko (modules.builtin)",
		"nls_utf8":          "shipped as kernel/fs/nls/nls_utf8.ko.xz (modules.dep)",
		"printk":            "built into the kernel (modules.builtin.modinfo)",
		"kelp_new":          "a test",
	} {
		if got, ok := names.Where(name); !ok || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, ok, want)
		}
	}
	if got, ok := names.Where("nls_base"); ok {
		t.Errorf("nls_base, a dependency only, is taken: %q", got)
	}
	if names.Len() != 7 {
		t.Errorf("%d names; want 7", names.Len())
	}
}
