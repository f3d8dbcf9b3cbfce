package elfobj

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestSeedRoundTrip(t *testing.T) {
	for name, data := range seedObjects(t) {
		t.Run(name, func(t *testing.T) {
			out := roundTrip(t, data)
			toolsAgree(t, filepath.Join("testdata/seed", name), out)
		})
	}
}

func TestParseModel(t *testing.T) {
	f, err := Parse(seedObjects(t)["basic.o"])
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_X86_64 || f.Symtab == nil || f.Shstrtab == nil || f.Symtab.Link.Name != ".strtab" {
		t.Fatalf("file: machine %v, symtab %v, shstrtab %v", f.Machine, f.Symtab, f.Shstrtab)
	}
	for i, s := range f.Sections {
		if s.Index != i+1 {
			t.Errorf("section %s has index %d at position %d", s.Name, s.Index, i)
		}
	}
	dispatch := f.Symbol("dispatch")
	text := f.Section(".text.dispatch")
	if dispatch == nil || text == nil || dispatch.Section != text || dispatch.Bind != elf.STB_GLOBAL || dispatch.Type != elf.STT_FUNC {
		t.Fatalf("dispatch = %+v, want a global function in .text.dispatch", dispatch)
	}
	relas := f.RelocSections(text)
	if len(relas) != 1 || relas[0].Name != ".rela.text.dispatch" || relas[0].Link != f.Symtab {
		t.Fatalf("relocation sections of .text.dispatch: %v", relas)
	}
	var targets []string
	for _, r := range relas[0].Relocs {
		targets = append(targets, f.Arch().RelocName(r.Type)+" "+r.Symbol.String())
	}
	for _, want := range []string{"R_X86_64_PC32 ext_counter", "R_X86_64_PC32 common_slot"} {
		if !slices.Contains(targets, want) {
			t.Errorf("relocations of .text.dispatch %v lack %q", targets, want)
		}
	}
	if c := f.Symbol("common_slot"); c == nil || c.Section != nil || c.Shndx != elf.SHN_COMMON {
		t.Errorf("common_slot = %+v, want SHN_COMMON", c)
	}
	if h := f.Symbol("hook"); h == nil || h.Bind != elf.STB_WEAK {
		t.Errorf("hook = %+v, want weak", h)
	}
	if u := f.Symbol("ext_log"); u == nil || !u.IsUndefined() {
		t.Errorf("ext_log = %+v, want undefined", u)
	}
	if f.Symtab.Data != nil || f.Shstrtab.Data != nil || relas[0].Data != nil {
		t.Errorf("generated sections keep their bytes")
	}
}

func TestGroupModel(t *testing.T) {
	f, err := Parse(seedObjects(t)["group.o"])
	if err != nil {
		t.Fatal(err)
	}
	grp := f.Section(".group")
	if grp == nil || grp.Group == nil {
		t.Fatal("no .group section")
	}
	g := grp.Group
	if g.Flags != 1 || g.Signature == nil || g.Signature.Name != "shared_helper" {
		t.Errorf("group flags %#x signature %v, want GRP_COMDAT shared_helper", g.Flags, g.Signature)
	}
	var members []string
	for _, m := range g.Members {
		members = append(members, m.Name)
	}
	if want := []string{".text.shared_helper", ".rela.text.shared_helper"}; !slices.Equal(members, want) {
		t.Errorf("group members %v, want %v", members, want)
	}
	// Removing the group's function takes its relocations and, the group
	// being empty then, the group itself.
	text := f.Section(".text.shared_helper")
	f.RemoveSection(text)
	f.RemoveRelocs(func(_ *Section, r *Reloc) bool { return r.Symbol != nil && r.Symbol.Section == text })
	if f.Section(".group") != nil || f.Section(".rela.text.shared_helper") != nil || f.Symbol("shared_helper") != nil {
		t.Fatalf("group, relocations or symbol survived the removal of their section")
	}
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(out); err != nil {
		t.Fatal(err)
	}
}

// TestNew builds an object from nothing and lets binutils judge it.
func TestNew(t *testing.T) {
	f := New(elf.EM_X86_64)
	text := f.AddSection(&Section{Name: ".text.caller", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Addralign: 16,
		Data: []byte{0xe8, 0, 0, 0, 0, 0xc3}}) // call callee; ret
	data := f.AddSection(&Section{Name: ".data.ptr", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: make([]byte, 8)})
	bss := f.AddSection(&Section{Name: ".bss.buf", Type: elf.SHT_NOBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 64, Size: 4096})
	callee := f.AddSymbol(&Symbol{Name: "callee", Bind: elf.STB_GLOBAL, Type: elf.STT_NOTYPE})
	f.AddSymbol(&Symbol{Name: "caller", Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: text, Size: 6})
	f.AddSymbol(&Symbol{Name: "buf", Bind: elf.STB_LOCAL, Type: elf.STT_OBJECT, Section: bss, Size: 4096})
	ptr := f.AddSymbol(&Symbol{Name: "ptr", Bind: elf.STB_LOCAL, Type: elf.STT_OBJECT, Section: data, Size: 8})
	f.AddRelocSection(text).Relocs = []Reloc{{Offset: 1, Type: uint32(elf.R_X86_64_PLT32), Symbol: callee, Addend: -4}}
	f.AddRelocSection(data).Relocs = []Reloc{{Offset: 0, Type: uint32(elf.R_X86_64_64), Symbol: f.SectionSymbol(bss), Addend: 16}}
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Index != 2 || callee.Index != 4 {
		t.Errorf("locals not first: ptr %d, callee %d", ptr.Index, callee.Index)
	}
	path := filepath.Join(t.TempDir(), "new.o")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	ldAccepts(t, path)
	dis := objdumpListing(t, path)
	for _, want := range []string{"<caller>:", "call", "R_X86_64_PLT32\tcallee-0x4"} {
		if !strings.Contains(dis, want) {
			t.Errorf("disassembly lacks %q:\n%s", want, dis)
		}
	}
	rel := readelfListing(t, path)
	for _, want := range []string{"R_X86_64_64            0000000000000000 .bss.buf + 10", ".rela.data.ptr", "NOBITS"} {
		if !strings.Contains(rel, want) {
			t.Errorf("readelf listing lacks %q:\n%s", want, rel)
		}
	}
	if again := roundTrip(t, out); !bytes.Equal(again, out) {
		t.Errorf("parse+write of a written object is not the identity")
	}
}

// TestLocalsBeforeGlobals adds a local symbol behind globals that
// relocations refer to, and checks the relocations follow the renumbering.
func TestLocalsBeforeGlobals(t *testing.T) {
	f, err := Parse(seedObjects(t)["basic.o"])
	if err != nil {
		t.Fatal(err)
	}
	before := relocTargets(t, f)
	// Appended directly: Write must still put it among the locals.
	f.Symbols = append(f.Symbols, &Symbol{Name: "late_local", Bind: elf.STB_LOCAL, Type: elf.STT_NOTYPE, Section: f.Section(".text.dispatch")})
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if after := relocTargets(t, g); !slices.Equal(before, after) {
		t.Errorf("relocation targets changed:\n%v\n%v", before, after)
	}
	ef, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	syms, _ := ef.Symbols()
	seenGlobal := false
	for _, s := range syms {
		if elf.ST_BIND(s.Info) != elf.STB_LOCAL {
			seenGlobal = true
		} else if seenGlobal {
			t.Errorf("local %s after a global", s.Name)
		}
	}
	symtab := ef.SectionByType(elf.SHT_SYMTAB)
	if n := g.Symbol("late_local").Index; symtab.Info != uint32(n+1) {
		t.Errorf("symtab sh_info %d, want %d (one past late_local)", symtab.Info, n+1)
	}
}

func relocTargets(t *testing.T, f *File) []string {
	var out []string
	for _, s := range f.Sections {
		for _, r := range s.Relocs {
			out = append(out, fmt.Sprintf("%s+%#x %s %s%+d", s.Info.Name, r.Offset, f.Arch().RelocName(r.Type), r.Symbol, r.Addend))
		}
	}
	return out
}

func TestRelSection(t *testing.T) {
	f := New(elf.EM_X86_64)
	data := f.AddSection(&Section{Name: ".data", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: make([]byte, 16)})
	sym := f.AddSymbol(&Symbol{Name: "target", Bind: elf.STB_GLOBAL})
	f.AddSection(&Section{Name: ".rel.data", Type: elf.SHT_REL, Flags: elf.SHF_INFO_LINK, Link: f.Symtab, Info: data, Addralign: 8,
		Relocs: []Reloc{{Offset: 8, Type: uint32(elf.R_X86_64_64), Symbol: sym}}})
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	rel := g.Section(".rel.data")
	if rel == nil || len(rel.Relocs) != 1 || rel.Relocs[0].Symbol.Name != "target" || rel.Relocs[0].Offset != 8 || rel.Entsize != relSize {
		t.Fatalf(".rel.data = %+v", rel)
	}
	rel.Relocs[0].Addend = 1
	if _, err := g.Encode(); err == nil || !strings.Contains(err.Error(), "SHT_REL") {
		t.Errorf("an addend in SHT_REL: got %v", err)
	}
}

// TestExtendedNumbering writes more than SHN_LORESERVE sections, which
// needs e_shnum = 0, SHN_XINDEX symbols and an SHT_SYMTAB_SHNDX table.
func TestExtendedNumbering(t *testing.T) {
	f := New(elf.EM_X86_64)
	const n = 70000
	for i := range n {
		s := f.AddSection(&Section{Name: fmt.Sprintf(".text.f%d", i), Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Addralign: 1, Data: []byte{0xc3}})
		f.AddSymbol(&Symbol{Name: fmt.Sprintf("f%d", i), Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: s, Size: 1})
	}
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if shnum := le.Uint16(out[60:]); shnum != 0 {
		t.Errorf("e_shnum %d, want 0", shnum)
	}
	if shndx := f.Section(".symtab_shndx"); shndx == nil || shndx.Type != elf.SHT_SYMTAB_SHNDX {
		t.Fatalf("no extended index table added")
	}
	g, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Sections) != len(f.Sections) {
		t.Fatalf("%d sections, want %d", len(g.Sections), len(f.Sections))
	}
	last := g.Symbol(fmt.Sprintf("f%d", n-1))
	if last == nil || last.Section == nil || last.Section.Name != fmt.Sprintf(".text.f%d", n-1) || last.Section.Index < int(elf.SHN_LORESERVE) {
		t.Fatalf("last symbol %+v", last)
	}
	// The section name table itself sits beyond SHN_LORESERVE.
	if g.Shstrtab == nil || g.Shstrtab.Name != ".shstrtab" {
		t.Errorf("section name table %v", g.Shstrtab)
	}
	ef, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	if len(ef.Sections) != len(f.Sections)+1 {
		t.Errorf("debug/elf sees %d sections, want %d", len(ef.Sections), len(f.Sections)+1)
	}
	again, err := g.Encode()
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("second write differs (%v)", err)
	}
}

func TestLivepatchMarkers(t *testing.T) {
	f, err := Parse(seedObjects(t)["basic.o"])
	if err != nil {
		t.Fatal(err)
	}
	sym := f.Symbol("ext_log")
	sym.Name = ".klp.sym.vmlinux.ext_log,0"
	sym.SetLivepatch()
	rela := f.Section(".rela.init.text")
	f.RenameSection(rela, ".klp.rela.vmlinux..init.text")
	rela.Flags |= elf.SHF_ALLOC | SHFRelaLivepatch
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	ks := g.Symbol(".klp.sym.vmlinux.ext_log,0")
	if ks == nil || !ks.IsLivepatch() || ks.Shndx != 0xff20 {
		t.Fatalf("livepatch symbol %+v", ks)
	}
	kr := g.Section(".klp.rela.vmlinux..init.text")
	if kr == nil || !kr.IsLivepatchRelocs() || kr.Flags != elf.SHF_ALLOC|elf.SHF_INFO_LINK|0x00100000 || kr.Info != g.Section(".init.text") {
		t.Fatalf("livepatch relocation section %+v", kr)
	}
	found := false
	for _, r := range kr.Relocs {
		found = found || r.Symbol == ks
	}
	if !found {
		t.Errorf("no relocation against the livepatch symbol")
	}
	path := filepath.Join(t.TempDir(), "klp.o")
	if err := g.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	listing := readelfListing(t, path)
	if !strings.Contains(listing, ".klp.rela.vmlinux..init.text") || !regexp.MustCompile(`GLOBAL DEFAULT +OS \[0xff20\] +\.klp\.sym\.vmlinux\.ext_log,0`).MatchString(listing) {
		t.Errorf("readelf does not show the markers:\n%s", listing)
	}
}

func TestStrtabSharesSuffixes(t *testing.T) {
	st := newStrtab(0)
	h := []int32{st.add(".text.foo"), st.add(".rela.text.foo"), st.add("foo"), st.add(".text.foo"), st.add("bar"), st.add("")}
	st.finish()
	buf := make([]byte, st.size)
	st.fill(buf)
	if want := "\x00.rela.text.foo\x00bar\x00"; string(buf) != want {
		t.Errorf("table %q, want %q", buf, want)
	}
	for i, want := range []string{".text.foo", ".rela.text.foo", "foo", ".text.foo", "bar", ""} {
		got, _ := lookupString(string(buf), st.offset(h[i]))
		if got != want {
			t.Errorf("string %d: %q, want %q", i, got, want)
		}
	}
}

func TestModinfo(t *testing.T) {
	data := AppendStringList(nil, "license=GPL", "livepatch=Y", "depends=")
	data = append(data, 0, 0) // padding
	data = AppendStringList(data, "alias=a", "alias=b")
	got := Modinfo(data)
	want := []ModinfoEntry{{"license", "GPL"}, {"livepatch", "Y"}, {"depends", ""}, {"alias", "a"}, {"alias", "b"}}
	if !slices.Equal(got, want) {
		t.Errorf("Modinfo = %v, want %v", got, want)
	}
	if got := StringList([]byte("a\x00b")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("unterminated last string: %q", got)
	}
}

// TestValidateNamesCulprit removes a symbol relocations still use.
func TestValidateNamesCulprit(t *testing.T) {
	f, err := Parse(seedObjects(t)["basic.o"])
	if err != nil {
		t.Fatal(err)
	}
	f.RemoveSymbol(f.Symbol("ext_counter"))
	_, err = f.Encode()
	if err == nil || !strings.Contains(err.Error(), "ext_counter") || !strings.Contains(err.Error(), ".rela.text.dispatch") {
		t.Fatalf("got %v, want an error naming ext_counter and .rela.text.dispatch", err)
	}
	f.RemoveRelocs(func(_ *Section, r *Reloc) bool { return r.Symbol != nil && r.Symbol.Name == "ext_counter" })
	if _, err := f.Encode(); err != nil {
		t.Fatal(err)
	}
}

// TestMalformed corrupts a valid object in targeted ways; each must give
// an error that says where.
func TestMalformed(t *testing.T) {
	orig := seedObjects(t)["basic.o"]
	f, err := Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	shoff := int(le.Uint64(orig[40:]))
	shdr := func(name string) int { return shoff + f.Section(name).Index*shdrSize }
	symOff := int(le.Uint64(orig[shdr(".symtab")+24:]))
	relaOff := int(le.Uint64(orig[shdr(".rela.text.dispatch")+24:]))
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		want   []string
	}{
		{"empty", func(b []byte) []byte { return nil }, []string{"too short"}},
		{"magic", func(b []byte) []byte { b[1] = 'X'; return b }, []string{"not an ELF file"}},
		{"class", func(b []byte) []byte { b[4] = 1; return b }, []string{"offset 0x4", "ELFCLASS32"}},
		{"endian", func(b []byte) []byte { b[5] = 2; return b }, []string{"offset 0x5", "byte order"}},
		{"type", func(b []byte) []byte { b[16] = 2; return b }, []string{"offset 0x10", "not a relocatable object"}},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }, []string{"section header", "overrun"}},
		{"shoff", func(b []byte) []byte { le.PutUint64(b[40:], 1<<40); return b }, []string{"offset 0x28", "outside the file"}},
		{"contents", func(b []byte) []byte { le.PutUint64(b[shdr(".text.dispatch")+24:], 1<<40); return b },
			[]string{"section .text.dispatch", "outside the file"}},
		{"name", func(b []byte) []byte { le.PutUint32(b[shdr(".text.dispatch"):], 1<<30); return b },
			[]string{"name offset 0x40000000"}},
		{"symtab link", func(b []byte) []byte {
			le.PutUint32(b[shdr(".symtab")+40:], uint32(f.Section(".text.dispatch").Index))
			return b
		},
			[]string{"section .symtab", "not a string table"}},
		{"symbol section", func(b []byte) []byte { le.PutUint16(b[symOff+f.Symbol("dispatch").Index*symSize+6:], 0xfe00); return b },
			[]string{"section .symtab", "dispatch", "section index 65024 out of range"}},
		{"xindex", func(b []byte) []byte { le.PutUint16(b[symOff+f.Symbol("dispatch").Index*symSize+6:], 0xffff); return b },
			[]string{"dispatch", "SHN_XINDEX without an extended index table"}},
		{"symbol name", func(b []byte) []byte { le.PutUint32(b[symOff+f.Symbol("dispatch").Index*symSize:], 1<<30); return b },
			[]string{"section .symtab", "name offset"}},
		{"reloc symbol", func(b []byte) []byte { le.PutUint32(b[relaOff+12:], 1<<20); return b },
			[]string{"section .rela.text.dispatch", fmt.Sprintf("offset %#x", relaOff), "symbol index 1048576 out of range"}},
		{"reloc offset", func(b []byte) []byte { le.PutUint64(b[relaOff:], 1<<20); return b },
			[]string{"section .rela.text.dispatch", "overruns .text.dispatch"}},
		{"reloc entsize", func(b []byte) []byte { le.PutUint64(b[shdr(".rela.text.dispatch")+56:], 16); return b },
			[]string{"section .rela.text.dispatch", "entry size 16"}},
		{"reloc info", func(b []byte) []byte { le.PutUint32(b[shdr(".rela.text.dispatch")+44:], 1<<20); return b },
			[]string{"section .rela.text.dispatch", "sh_info 1048576 out of range"}},
		{"shstrndx", func(b []byte) []byte { le.PutUint16(b[62:], uint16(f.Section(".text.dispatch").Index)); return b },
			[]string{"section name table has type SHT_PROGBITS"}},
		{"null section", func(b []byte) []byte { b[shoff+8] = 1; return b }, []string{"section header 0 is not null"}},
		{"second symtab", func(b []byte) []byte {
			le.PutUint32(b[shdr(".text.dispatch")+4:], uint32(elf.SHT_SYMTAB))
			le.PutUint64(b[shdr(".text.dispatch")+56:], symSize)
			return b
		},
			[]string{"second symbol table"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.mutate(bytes.Clone(orig)))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FormatError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestRemoveSectionDependents: a link-order section and its relocations
// go with the section they follow; unrelated sections stay.
func TestRemoveSectionDependents(t *testing.T) {
	f := New(elf.EM_X86_64)
	text := f.AddSection(&Section{Name: ".text.f", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Addralign: 16, Data: []byte{0x90, 0xc3}})
	other := f.AddSection(&Section{Name: ".text.g", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Addralign: 16, Data: []byte{0xc3}})
	pfe := f.AddSection(&Section{Name: "__patchable_function_entries", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE | elf.SHF_LINK_ORDER, Link: text, Addralign: 8, Data: make([]byte, 8)})
	fsym := f.AddSymbol(&Symbol{Name: "f", Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: text, Size: 2})
	f.AddSymbol(&Symbol{Name: "g", Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: other, Size: 1})
	f.AddRelocSection(pfe).Relocs = []Reloc{{Type: uint32(elf.R_X86_64_64), Symbol: fsym}}
	f.AddRelocSection(text)
	f.RemoveSection(text)
	var names []string
	for _, s := range f.Sections {
		names = append(names, s.Name)
	}
	if want := []string{".symtab", ".strtab", ".shstrtab", ".text.g"}; !slices.Equal(names, want) {
		t.Errorf("sections %v, want %v", names, want)
	}
	if f.Symbol("f") != nil || f.Symbol("g") == nil || fsym.Index != 0 {
		t.Errorf("symbols after the removal: f %v, g %v", f.Symbol("f"), f.Symbol("g"))
	}
	if _, err := f.Encode(); err != nil {
		t.Fatal(err)
	}
}
