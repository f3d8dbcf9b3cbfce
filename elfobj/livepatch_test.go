package elfobj

import (
	"strings"
	"testing"
)

func TestKlpRelaNames(t *testing.T) {
	for name, want := range map[string][2]string{
		".klp.rela.vmlinux..text.foo":               {"vmlinux", ".text.foo"},
		".klp.rela.ext4..text.unlikely.ext4_fill":   {"ext4", ".text.unlikely.ext4_fill"},
		".klp.rela.vmlinux.__jump_table":            {"vmlinux", "__jump_table"},
		".klp.rela.ext4.text.ext4_foo":              {"ext4", "text.ext4_foo"},
		".klp.rela.vmlinux..text.cmdline_proc_show": {"vmlinux", ".text.cmdline_proc_show"},
	} {
		obj, sec, ok := ParseKlpRelaName(name)
		if !ok || obj != want[0] || sec != want[1] {
			t.Errorf("ParseKlpRelaName(%q) = %q, %q, %v", name, obj, sec, ok)
		}
		if got := KlpRelaName(obj, sec); got != name {
			t.Errorf("KlpRelaName(%q, %q) = %q, want %q", obj, sec, got, name)
		}
	}
	for _, bad := range []string{".klp.rela.vmlinux", ".rela.text", ".klp.rela..text", ".klp.sym", ".klp.rela." + strings.Repeat("m", 56) + "..text"} {
		if _, _, ok := ParseKlpRelaName(bad); ok {
			t.Errorf("ParseKlpRelaName(%q) accepted", bad)
		}
	}
}

func TestKlpSymNames(t *testing.T) {
	for name, want := range map[string]KlpSym{
		".klp.sym.vmlinux.printed_dbg_warning.6,2": {"vmlinux", "printed_dbg_warning.6", 2},
		".klp.sym.crc16.crc16,0":                   {"crc16", "crc16", 0},
		".klp.sym.ext4.ext4_attr_show,1":           {"ext4", "ext4_attr_show", 1},
	} {
		k, err := ParseKlpSym(name)
		if err != nil || k != want {
			t.Errorf("ParseKlpSym(%q) = %+v, %v; want %+v", name, k, err, want)
		}
		if k.String() != name {
			t.Errorf("%+v.String() = %q, want %q", k, k.String(), name)
		}
	}
	for bad, why := range map[string]string{
		".klp.sym.vmlinux.foo":                                "not of the form",
		".klp.sym.vmlinux.foo,x":                              "not a number",
		".klp.sym.vmlinux.foo,-1":                             "negative sympos",
		".klp.sym.vmlinux.,0":                                 "symbol name",
		".klp.sym..foo,0":                                     "object name",
		".klp.sym." + strings.Repeat("m", 56) + ".foo,0":      "object name",
		".klp.sym.vmlinux." + strings.Repeat("f", 512) + ",0": "symbol name",
		".klp.sym.vmlinux.a,b,0":                              "symbol name",
		".rela.text":                                          "not of the form",
	} {
		if _, err := ParseKlpSym(bad); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseKlpSym(%.40q) = %v; want an error about %q", bad, err, why)
		}
	}
}

// FuzzKlpSym: every name ParseKlpSym accepts reads back as the same
// symbol, and its canonical name passes Check.
func FuzzKlpSym(f *testing.F) {
	for _, s := range []string{".klp.sym.vmlinux.foo,0", ".klp.sym.ext4.ext4_fill.cold,12", ".klp.sym.a.b,007", ".klp.sym.vmlinux.x,+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		k, err := ParseKlpSym(name)
		if err != nil {
			return
		}
		if err := k.Check(); err != nil {
			t.Fatalf("ParseKlpSym(%q) = %+v, which Check refuses: %v", name, k, err)
		}
		k2, err := ParseKlpSym(k.String())
		if err != nil || k2 != k {
			t.Fatalf("ParseKlpSym(%q) = %+v; its name %q reads back as %+v, %v", name, k, k.String(), k2, err)
		}
	})
}
