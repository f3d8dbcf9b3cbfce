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
		"modules.dep":             "kernel/drivers/net/dummy.ko:\nkernel/fs/nls/nls_utf8.ko.xz: kernel/fs/nls/nls_base.ko\n",
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
		if !strings.Contains(names[name], where) {
			t.Errorf("%s: %q; want %q", name, names[name], where)
		}
	}
	if len(names) != 6 {
		t.Errorf("names %v; want 6", names)
	}
}
