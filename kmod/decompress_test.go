package kmod

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/ulikunitz/xz"
)

// TestDecompress reads a module compressed as Debian 13 ships them (xz,
// by the xz tool with the kernel's options) and as gzip, and leaves an
// uncompressed ELF file as it is.
func TestDecompress(t *testing.T) {
	elfData := append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte("kelp"), 1000)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(elfData)
	zw.Close()
	var xzd bytes.Buffer
	xw, err := xz.NewWriter(&xzd)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(elfData)
	xw.Close()
	cases := map[string][]byte{"plain": elfData, "gzip": gz.Bytes(), "xz (Go)": xzd.Bytes()}
	if _, err := exec.LookPath("xz"); err == nil {
		cmd := exec.Command("xz", "--check=crc32", "--lzma2=dict=1MiB", "-c")
		cmd.Stdin = bytes.NewReader(elfData)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases["xz (kbuild's options)"] = out
	} else if os.Getenv("CI") == "true" {
		t.Fatal("xz not installed (xz-utils)")
	}
	for name, data := range cases {
		got, err := Decompress(data)
		if err != nil || !bytes.Equal(got, elfData) {
			t.Errorf("%s: %d bytes, %v; want the %d-byte ELF image", name, len(got), err, len(elfData))
		}
	}
	if _, err := Decompress([]byte("\xfd7zXZ\x00garbage")); !errors.Is(err, ErrNotModule) {
		t.Errorf("corrupt xz: %v; want ErrNotModule", err)
	}
}
