package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestMalformed: damaged and foreign input is refused with a reason an
// admin understands, never a panic.
func TestMalformed(t *testing.T) {
	k := testenv.RequireKernel(t)
	good, err := os.ReadFile(filepath.Join(k.ModulesDir, "kernel/fs/ext4/ext4.ko"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i>>3)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"random bytes", random, "not an ELF file"},
		{"xz", []byte("\xfd7zXZ\x00rest"), "xz-compressed"},
		{"zstd", []byte("\x28\xb5\x2f\xfdrest"), "zstd-compressed"},
		{"truncated header", good[:40], "truncated ELF file"},
		{"truncated 1000 bytes", good[:1000], "truncated ELF file"},
		{"truncated half", good[:len(good)/2], "truncated ELF file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data)
			if !errors.Is(err, ErrNotModule) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse = %v, want ErrNotModule mentioning %q", err, c.want)
			}
		})
	}
}
