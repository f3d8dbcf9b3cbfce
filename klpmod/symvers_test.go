package klpmod

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kelp-project/kelp/elfobj"
)

// TestKeptSymvers: modpost's input keeps, in the export list's order,
// every line naming a symbol of the module's objects or module_layout,
// the same whether the list was indexed ahead (Prefetch) or is read at
// the link, and an index of a list rewritten since is not used.
func TestKeptSymvers(t *testing.T) {
	headers, dir := t.TempDir(), t.TempDir()
	list := "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n" +
		"0x00000002\tseq_puts\tvmlinux\tEXPORT_SYMBOL_GPL\t\n" +
		"not a symvers line\n" +
		"0x00000003\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n" +
		"0x00000004\tfoo_get\tdrivers/foo/foo\tEXPORT_SYMBOL_GPL\tFOO\n" +
		"0x00000005\tprintk\tdrivers/bar/bar\tEXPORT_SYMBOL\t\n" +
		"0x00000006\tunused\tvmlinux\tEXPORT_SYMBOL\t"
	symvers := filepath.Join(headers, "Module.symvers")
	if err := os.WriteFile(symvers, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	obj := elfobj.New(elf.EM_X86_64)
	for _, name := range []string{"printk", "foo_get", "not_exported"} {
		obj.AddSymbol(&elfobj.Symbol{Name: name, Bind: elf.STB_GLOBAL, Type: elf.STT_NOTYPE, Shndx: elf.SHN_UNDEF})
	}
	objFile := filepath.Join(dir, "unit.o")
	if err := obj.WriteFile(objFile); err != nil {
		t.Fatal(err)
	}
	want := "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n" +
		"0x00000003\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n" +
		"0x00000004\tfoo_get\tdrivers/foo/foo\tEXPORT_SYMBOL_GPL\tFOO\n" +
		"0x00000005\tprintk\tdrivers/bar/bar\tEXPORT_SYMBOL\t\n"
	index, err := indexSymvers(headers)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what  string
		index *symversIndex
	}{{"read at the link", nil}, {"indexed ahead", index}} {
		got, err := keptSymvers(dir, headers, []string{objFile}, c.index)()
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		data, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != want {
			t.Errorf("%s: kept\n%s\nwant\n%s", c.what, data, want)
		}
	}
	// The list changes after it was indexed: the link reads it again.
	changed := "0x00000007\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n"
	if err := os.WriteFile(symvers, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(symvers, later, later); err != nil {
		t.Fatal(err)
	}
	got, err := keptSymvers(dir, headers, []string{objFile}, index)()
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(got); string(data) != changed {
		t.Errorf("after the list changed: kept %q, want %q", data, changed)
	}
}
