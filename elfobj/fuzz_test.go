package elfobj

import (
	"bytes"
	"debug/elf"
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Whatever it accepts must
// write, parse again, and write again to the same bytes; whatever it
// rejects must be a *FormatError. Seeds: the objects in testdata/seed and
// a few built here (groups, SHT_REL, livepatch markers).
func FuzzParse(f *testing.F) {
	for _, b := range seedObjects(f) {
		f.Add(b)
	}
	for _, b := range syntheticSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Parse(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		out, err := obj.Encode()
		if err != nil {
			t.Fatalf("parsed but does not write: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("written object does not parse: %v", err)
		}
		out2, err := again.Encode()
		if err != nil {
			t.Fatalf("written object parses but does not write: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("second write differs from the first")
		}
	})
}

// syntheticSeeds builds small objects with features the compiled seeds
// lack.
func syntheticSeeds(t testing.TB) [][]byte {
	f := New(elf.EM_X86_64)
	text := f.AddSection(&Section{Name: ".text.f", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR | elf.SHF_GROUP, Addralign: 16, Data: []byte{0xe8, 0, 0, 0, 0, 0xc3}})
	data := f.AddSection(&Section{Name: ".data", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: make([]byte, 16)})
	fn := f.AddSymbol(&Symbol{Name: "f", Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: text, Size: 6})
	klp := f.AddSymbol(&Symbol{Name: ".klp.sym.vmlinux.g,1", Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Shndx: SHNLivepatch})
	f.InsertSectionAfter(nil, &Section{Name: ".group", Type: elf.SHT_GROUP, Link: f.Symtab, Addralign: 4, Entsize: 4,
		Group: &Group{Flags: 1, Signature: fn, Members: []*Section{text}}})
	f.AddSection(&Section{Name: ".klp.rela.vmlinux..text.f", Type: elf.SHT_RELA, Flags: elf.SHF_ALLOC | elf.SHF_INFO_LINK | SHFRelaLivepatch,
		Link: f.Symtab, Info: text, Addralign: 8, Entsize: relaSize,
		Relocs: []Reloc{{Offset: 1, Type: uint32(elf.R_X86_64_PLT32), Symbol: klp, Addend: -4}}})
	f.AddSection(&Section{Name: ".rel.data", Type: elf.SHT_REL, Flags: elf.SHF_INFO_LINK, Link: f.Symtab, Info: data, Addralign: 8, Entsize: relSize,
		Relocs: []Reloc{{Offset: 8, Type: uint32(elf.R_X86_64_64), Symbol: fn}}})
	f.AddSection(&Section{Name: ".modinfo", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC, Addralign: 1,
		Data: AppendStringList(nil, "livepatch=Y", "license=GPL")})
	var out [][]byte
	// Small objects let mutations reach the headers often.
	tiny := New(elf.EM_X86_64)
	ttext := tiny.AddSection(&Section{Name: ".text", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Addralign: 1, Data: []byte{0xe8, 0, 0, 0, 0}})
	tsym := tiny.AddSymbol(&Symbol{Name: "x", Bind: elf.STB_GLOBAL})
	tiny.AddRelocSection(ttext).Relocs = []Reloc{{Offset: 1, Type: uint32(elf.R_X86_64_PC32), Symbol: tsym, Addend: -4}}
	for _, o := range []*File{f, tiny, {Machine: elf.EM_X86_64}} {
		b, err := o.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
