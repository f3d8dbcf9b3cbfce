package kmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestDebianModules reads modules shipped (and signed) by Debian.
func TestDebianModules(t *testing.T) {
	k := testenv.RequireKernel(t)
	m, err := Open(filepath.Join(k.ModulesDir, "kernel/fs/ext4/ext4.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "ext4" || Release(m.Vermagic) != k.Release || m.Livepatch {
		t.Errorf("ext4.ko: name %q vermagic %q livepatch %v", m.Name, m.Vermagic, m.Livepatch)
	}
	want := []string{"mbcache", "jbd2", "crc16"}
	for _, d := range want {
		if !contains(m.Depends, d) {
			t.Errorf("ext4.ko depends %v lacks %s", m.Depends, d)
		}
	}
	s := m.Signature
	if s == nil || s.Type != "PKCS#7" || s.HashAlgo != "sha256" || s.Signer == "" || s.KeyID == "" || s.Error != "" {
		t.Fatalf("ext4.ko signature = %+v", s)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	elfObj := filepath.Join(dir, "obj.o")
	// An ELF that is not a module: the test binary itself.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(elfObj, exe, 0o644); err != nil {
		t.Fatal(err)
	}
	random := filepath.Join(dir, "random.ko")
	if err := os.WriteFile(random, []byte("\x7fELF\x02\x01\x01 this is not really an ELF file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	trailer := filepath.Join(dir, "trailer.ko")
	if err := os.WriteFile(trailer, []byte("xx"+SignatureMagic), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"executable": elfObj, "random": random, "trailer": trailer,
		"directory": dir, "missing": filepath.Join(dir, "none.ko"),
	} {
		_, err := Open(path)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", name, err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
