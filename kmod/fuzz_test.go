package kmod

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
)

// minimalModule is the smallest object Parse takes for a module: .modinfo
// and .gnu.linkonce.this_module, plus a livepatch relocation section name.
func minimalModule(t testing.TB, modinfo string) []byte {
	t.Helper()
	f := elfobj.New(elf.EM_X86_64)
	f.AddSection(&elfobj.Section{Name: ".modinfo", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC, Addralign: 1, Data: []byte(modinfo)})
	f.AddSection(&elfobj.Section{Name: ".gnu.linkonce.this_module", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 64, Data: make([]byte, 64)})
	f.AddSection(&elfobj.Section{Name: ".klp.rela.ext4.text", Type: elf.SHT_PROGBITS, Addralign: 8})
	data, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// withSignature appends a module signature trailer of the given id type
// around sig.
func withSignature(elfPart, sig []byte, idType byte) []byte {
	info := make([]byte, sigInfoSize)
	info[2] = idType
	binary.BigEndian.PutUint32(info[8:], uint32(len(sig)))
	out := append(bytes.Clone(elfPart), sig...)
	out = append(out, info...)
	return append(out, SignatureMagic...)
}

// FuzzParse: whatever the bytes, Parse returns a module or one-line
// ErrNotModule error, never panics; a module it returns is consistent with
// the bytes: its ELF part parses alone to the same information, and a
// signature covers exactly the rest of the file.
func FuzzParse(f *testing.F) {
	good := minimalModule(f, "name=fuzz\x00vermagic=6.1.0-56-amd64 SMP mod_unload \x00livepatch=Y\x00depends=a,b\x00")
	f.Add(good)
	f.Add(withSignature(good, []byte("\x30\x03\x02\x01\x01"), pkeyIDPKCS7))
	f.Add(withSignature(good, []byte("raw"), 1))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte("x" + SignatureMagic))
	f.Add([]byte("\xfd7zXZ\x00rest"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrNotModule) {
				t.Fatalf("error is not ErrNotModule: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if m.Vermagic == "" || m.ELFSize < 0 || m.ELFSize > int64(len(data)) {
			t.Fatalf("inconsistent module: vermagic %q, ELF size %d of %d bytes", m.Vermagic, m.ELFSize, len(data))
		}
		if m.Signature != nil && m.ELFSize+int64(m.Signature.Size+sigInfoSize+len(SignatureMagic)) != int64(len(data)) {
			t.Fatalf("signature of %d bytes after %d ELF bytes does not end the %d-byte file", m.Signature.Size, m.ELFSize, len(data))
		}
		if m.Signature == nil && m.ELFSize != int64(len(data)) {
			t.Fatalf("unsigned module: ELF size %d of %d bytes", m.ELFSize, len(data))
		}
		if m.Signature != nil {
			alone, err := Parse(data[:m.ELFSize])
			if err != nil {
				// The ELF part may itself end in a trailer-like tail; then it is
				// not a module alone, which is fine only in that case.
				if !bytes.HasSuffix(data[:m.ELFSize], []byte(SignatureMagic)) {
					t.Fatalf("ELF part of a signed module does not parse alone: %v", err)
				}
				return
			}
			if !reflect.DeepEqual(alone.Info, m.Info) || !reflect.DeepEqual(alone.KlpObjects, m.KlpObjects) {
				t.Fatalf("ELF part alone reads differently: %v vs %v", alone.Info, m.Info)
			}
		}
		if m.Livepatch != (m.first("livepatch") == "Y") || Release(m.Vermagic) != strings.Fields(m.Vermagic)[0] {
			t.Fatalf("derived fields disagree with .modinfo: %+v", m)
		}
		for _, d := range m.Depends {
			if d == "" || strings.Contains(d, ",") {
				t.Fatalf("dependency %q", d)
			}
		}
	})
}

// TestMinimalModule: the fuzz seed is a module Parse takes, with its
// signature variants.
func TestMinimalModule(t *testing.T) {
	good := minimalModule(t, "name=fuzz\x00vermagic=6.1.0-56-amd64 SMP \x00livepatch=Y\x00depends=a,b\x00")
	m, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "fuzz" || !m.Livepatch || !reflect.DeepEqual(m.Depends, []string{"a", "b"}) || !reflect.DeepEqual(m.KlpObjects, []string{"ext4"}) || m.Signature != nil {
		t.Errorf("minimal module read as %+v", m)
	}
	signed, err := Parse(withSignature(good, []byte("raw"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if signed.Signature == nil || signed.Signature.Type != "id type 1" || signed.Signature.Size != 3 || signed.ELFSize != int64(len(good)) {
		t.Errorf("signed module: %+v size %d", signed.Signature, signed.ELFSize)
	}
}
