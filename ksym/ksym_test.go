package ksym

import (
	"debug/elf"
	"errors"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
)

func TestParseKallsyms(t *testing.T) {
	k, err := ParseKallsyms(strings.NewReader(`ffffffff81000000 T _text
ffffffff81000010 t show
ffffffff81000020 t show
ffffffffc0000000 t show	[ext4]
ffffffffc0001000 t bpf_prog_1	[bpf]
`))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(k.Object(Vmlinux).Syms); n != 3 {
		t.Errorf("%d vmlinux symbols, want 3", n)
	}
	if got := k.Object(Vmlinux).Lookup("show"); len(got) != 2 || got[0] != 1 {
		t.Errorf("Lookup(show) = %v", got)
	}
	if k.Object("ext4") == nil || k.Object("bpf") != nil {
		t.Errorf("objects = %v", k.Objects)
	}
	for _, bad := range []string{"zz t x\n", "ffff t\n", "ffff tt x\n", "ffff t x ext4\n", "ffff t x [m]\n"} {
		if _, err := ParseKallsyms(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseKallsyms(%q) accepted", bad)
		}
	}
}

func TestParseSymvers(t *testing.T) {
	s, err := ParseSymvers(strings.NewReader("0x20ba7fb1\tget_task_mm\tvmlinux\tEXPORT_SYMBOL_GPL\t\n0x00000001\tjbd2_journal_start\tfs/jbd2/jbd2\tEXPORT_SYMBOL\t\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e := s["get_task_mm"]; e.CRC != 0x20ba7fb1 || e.Object != Vmlinux {
		t.Errorf("get_task_mm = %+v", e)
	}
	if e := s["jbd2_journal_start"]; e.Object != "jbd2" || e.Path != "fs/jbd2/jbd2" {
		t.Errorf("jbd2_journal_start = %+v", e)
	}
	if _, err := ParseSymvers(strings.NewReader("nothex\tx\tvmlinux\tEXPORT_SYMBOL\n")); err == nil {
		t.Error("bad CRC accepted")
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{"fs/jbd2/jbd2": "jbd2", "/lib/modules/x/crc-t10dif.ko": "crc_t10dif", "dm-mod.ko.xz": "dm_mod"} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSectionClass(t *testing.T) {
	for in, want := range map[string]string{
		".text.foo": ".text", ".text.unlikely.foo": ".text.unlikely", ".text.unlikely": ".text.unlikely",
		".bss.count.1": ".bss", ".data..read_mostly": ".data..read_mostly", ".data.once": ".data.once",
		".rodata.str1.1": ".rodata", ".init.text": ".init.text", "__tracepoints": "__tracepoints", ".text": ".text",
	} {
		if got := SectionClass(in); got != want {
			t.Errorf("SectionClass(%q) = %q, want %q", in, got, want)
		}
	}
}

// unitObject builds an object defining local functions in .text.<name>
// sections, in the order given.
func unitObject(names ...string) (*elfobj.File, map[string]*elfobj.Symbol) {
	f := elfobj.New(elf.EM_X86_64)
	f.AddSymbol(&elfobj.Symbol{Name: "unit.c", Bind: elf.STB_LOCAL, Type: elf.STT_FILE, Shndx: elf.SHN_ABS})
	syms := map[string]*elfobj.Symbol{}
	for _, n := range names {
		sec := f.AddSection(&elfobj.Section{Name: ".text." + n, Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Data: make([]byte, 16)})
		syms[n] = f.AddSymbol(&elfobj.Symbol{Name: n, Bind: elf.STB_LOCAL, Type: elf.STT_FUNC, Section: sec, Size: 16})
	}
	f.Renumber()
	return f, syms
}

func table(names ...string) *Table {
	t := &Table{Object: Vmlinux}
	for i, n := range names {
		t.Syms = append(t.Syms, Symbol{Addr: uint64(0x1000 + 16*i), Type: 't', Name: n})
	}
	return t
}

func TestSymposNeighbourhood(t *testing.T) {
	f, syms := unitObject("show", "store", "alpha_only", "show2")
	// Two units define show and store; only the second also defines the
	// uniquely named alpha_only, two places after its show.
	tab := table("a", "show", "store", "b", "show", "store", "alpha_only", "show2", "c", "show2")
	loc := NewLocator(tab, f, "")
	if pos, err := loc.Sympos(syms["show"]); err != nil || pos != 2 {
		t.Errorf("show: sympos %d, %v; want 2", pos, err)
	}
	if pos, err := loc.Sympos(syms["show2"]); err != nil || pos != 1 {
		t.Errorf("show2: sympos %d, %v; want 1", pos, err)
	}
	if pos, err := loc.Sympos(syms["alpha_only"]); err != nil || pos != 0 {
		t.Errorf("alpha_only: sympos %d, %v; want 0 (unique)", pos, err)
	}
	// Without the anchor the two instances cannot be told apart.
	f2, syms2 := unitObject("show", "store")
	_, err := NewLocator(table("show", "store", "x", "show", "store"), f2, "").Sympos(syms2["show"])
	var amb *AmbiguousError
	if !errors.As(err, &amb) || len(amb.Candidates) != 2 || !strings.Contains(err.Error(), "sympos 2") {
		t.Errorf("ambiguous case: %v", err)
	}
	if _, err := NewLocator(table("x"), f2, "").Sympos(syms2["show"]); !errors.As(err, new(*NotFoundError)) {
		t.Errorf("missing symbol: %v", err)
	}
}

// TestSymposPrefixSymbols: on 6.12 kallsyms lists __pfx_<fn> (16 bytes
// before each function) while the unit's objects, compiled without
// objtool, have none; the neighbours still line up.
func TestSymposPrefixSymbols(t *testing.T) {
	f, syms := unitObject("show", "store", "alpha_only")
	tab := table("__pfx_a", "a", "__pfx_show", "show", "__pfx_store", "store", "__pfx_b", "b",
		"__pfx_show", "show", "__pfx_store", "store", "__pfx_alpha_only", "alpha_only")
	if pos, err := NewLocator(tab, f, "").Sympos(syms["show"]); err != nil || pos != 2 {
		t.Errorf("show: sympos %d, %v; want 2", pos, err)
	}
	// The other direction: the anchor before the duplicate.
	f2, syms2 := unitObject("alpha_only", "show")
	tab2 := table("__pfx_alpha_only", "alpha_only", "__pfx_show", "show", "__pfx_c", "c", "__pfx_show", "show")
	if pos, err := NewLocator(tab2, f2, "").Sympos(syms2["show"]); err != nil || pos != 1 {
		t.Errorf("show after its anchor: sympos %d, %v; want 1", pos, err)
	}
}

func TestSymposByFile(t *testing.T) {
	f, syms := unitObject("show")
	tab := &Table{Object: "ext4", Files: true, Syms: []Symbol{{Name: "show", Type: 't', File: "a.c"}, {Name: "show", Type: 't', File: "unit.c"}}}
	if pos, err := NewLocator(tab, f, "").Sympos(syms["show"]); err != nil || pos != 2 {
		t.Errorf("sympos %d, %v; want 2", pos, err)
	}
}

// TestTypeLetterWeak checks that weak definitions read from an ELF symbol
// table get nm's and kallsyms' letters, W and V, which Resolver.Runs
// relies on to tell a weak default the kernel runs from an override.
func TestTypeLetterWeak(t *testing.T) {
	text := &elfobj.Section{Name: ".text", Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR}
	data := &elfobj.Section{Name: ".data", Flags: elf.SHF_ALLOC | elf.SHF_WRITE}
	for _, c := range []struct {
		sym  elfobj.Symbol
		want byte
	}{
		{elfobj.Symbol{Name: "f", Bind: elf.STB_WEAK, Type: elf.STT_FUNC, Section: text}, 'W'},
		{elfobj.Symbol{Name: "v", Bind: elf.STB_WEAK, Type: elf.STT_OBJECT, Section: data}, 'V'},
		{elfobj.Symbol{Name: "g", Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: text}, 'T'},
		{elfobj.Symbol{Name: "l", Bind: elf.STB_LOCAL, Type: elf.STT_OBJECT, Section: data}, 'd'},
	} {
		if got := typeLetter(&c.sym); got != c.want {
			t.Errorf("%s: %c, want %c", c.sym.Name, got, c.want)
		}
	}
}
