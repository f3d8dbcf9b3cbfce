package ksym_test

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
)

// moduleRunCases are objects of modules of several subsystems that define
// a local (an out-of-line static inline, or a static function) under a
// name other objects of the same module define too, with no neighbour of
// a unique name next to it in the module's table.
var moduleRunCases = []struct{ obj, module, name string }{
	{"drivers/block/drbd/drbd_nl.o", "drbd", "put_ldev"},
	{"drivers/net/vxlan/vxlan_core.o", "vxlan", "jhash"},
	{"fs/f2fs/data.o", "f2fs", "f2fs_put_dnode"},
	{"fs/gfs2/dir.o", "gfs2", "gfs2_qstr2dirent"},
	{"net/ceph/auth.o", "libceph", "build_request"},
}

// TestSymposModuleRuns: in a module whose .ko carries no file symbols
// (Debian's), a local defined by several of its objects is located by the
// unit's whole run of locals in the module's symbol table. Every
// duplicated local function of the objects located this way is checked
// against the module file by another fact than symbol order: the linker
// lays out each object's .text as one piece, so the instance the unit
// defines is the one whose address lies between the addresses of the
// unit's functions whose names are unique in the module; the code at the
// instance selected is the object's, too, at least as well as any other
// instance's.
func TestSymposModuleRuns(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree, err := k.Tree(ctx)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	located, placed := 0, 0
	for _, c := range moduleRunCases {
		path, _, _, err := tree.Original(ctx, c.obj)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elfobj.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		table := ksymtest.Module(t, k, c.module)
		for i := range table.Syms {
			if table.Syms[i].File != "" {
				t.Fatalf("%s: the module file names source files; the case needs one without", c.module)
			}
		}
		ko := moduleSymbols(t, k, c.module, len(table.Syms))
		// The address range of the unit's .text in the module: its
		// functions of a name the module has once.
		lo, hi := ^uint64(0), uint64(0)
		for _, s := range f.Symbols {
			if s.Type != elf.STT_FUNC || !ksym.Listable(s) || ksym.SectionClass(s.Section.Name) != ".text" {
				continue
			}
			if idx := table.Lookup(s.Name); len(idx) == 1 && ko[idx[0]].Section.Name == ".text" {
				lo, hi = min(lo, ko[idx[0]].Value), max(hi, ko[idx[0]].Value)
			}
		}
		if lo >= hi {
			t.Fatalf("%s: no uniquely named .text functions in %s", c.obj, c.module)
		}
		loc := ksym.NewLocator(table, f, "")
		seen, confirmed := false, false
		for _, s := range f.Symbols {
			if !s.IsLocal() || s.Type != elf.STT_FUNC || !ksym.Listable(s) || len(table.Lookup(s.Name)) < 2 {
				continue
			}
			pos, err := loc.Sympos(s)
			if s.Name == c.name {
				seen = true
				if err != nil {
					t.Errorf("%s: %s: %v", c.obj, s.Name, err)
					continue
				}
			}
			if err != nil {
				continue
			}
			located++
			idx := table.Lookup(s.Name)
			if pos < 1 || pos > len(idx) {
				t.Errorf("%s: %s: sympos %d of %d", c.obj, s.Name, pos, len(idx))
				continue
			}
			chosen := ko[idx[pos-1]]
			// By address: the one instance within the unit's .text.
			if ksym.SectionClass(s.Section.Name) == ".text" {
				var inside []int
				for i, k := range idx {
					if ko[k].Section.Name == ".text" && lo < ko[k].Value && ko[k].Value < hi {
						inside = append(inside, i+1)
					}
				}
				switch {
				case len(inside) == 1 && inside[0] == pos:
					placed++
					if s.Name == c.name {
						confirmed = true
					}
				case len(inside) > 0:
					t.Errorf("%s: %s: sympos %d; the instances within the unit's .text (%#x..%#x) are %v", c.obj, s.Name, pos, lo, hi, inside)
				}
			}
			// By code.
			p := newProbe(f, c.obj, s, pos)
			mine := score(p, symbolCode(chosen))
			other := 0.0
			for i, k := range idx {
				if i != pos-1 {
					other = max(other, score(p, symbolCode(ko[k])))
				}
			}
			if mine < 0.9 || mine < other {
				t.Errorf("%s: %s: sympos %d matches the object's code %.2f, another instance %.2f", c.obj, s.Name, pos, mine, other)
			}
		}
		if !seen {
			t.Errorf("%s: defines no local function %s that %s defines more than once", c.obj, c.name, c.module)
		} else if !confirmed {
			// vxlan_core.o's jhash is the module's first function:
			// no function of the unit lies before it.
			t.Logf("%s: %s: before or after the unit's uniquely named functions, not confirmed by its address", c.obj, c.name)
		}
		// The same run twice in the table (a look-alike object):
		// refused as ambiguous, never the first one taken.
		twice := &ksym.Table{Object: table.Object, Files: table.Files, Syms: append(slices.Clone(table.Syms), table.Syms...)}
		if pos, err := ksym.NewLocator(twice, f, "").Sympos(f.Symbol(c.name)); err == nil {
			t.Errorf("%s: %s: sympos %d in a table with every run twice", c.obj, c.name, pos)
		} else if _, ok := err.(*ksym.AmbiguousError); !ok {
			t.Errorf("%s: %s in a table with every run twice: %v", c.obj, c.name, err)
		}
	}
	t.Logf("%d duplicated local functions located, %d of them confirmed by address", located, placed)
	if placed < 5 {
		t.Errorf("only %d located instances confirmed by their address", placed)
	}
}

// moduleSymbols returns the symbols of the module's file in the order of
// its table (ModuleTable).
func moduleSymbols(t *testing.T, k *testenv.Kernel, module string, n int) []*elfobj.Symbol {
	t.Helper()
	var found string
	filepath.WalkDir(filepath.Join(k.ModulesDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && ksym.ModuleName(p) == module {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	f, err := elfobj.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	var out []*elfobj.Symbol
	for _, s := range f.Symbols {
		if s.Type == elf.STT_FILE || s.Name == "" || s.Section == nil || s.Section.Flags&elf.SHF_ALLOC == 0 || strings.HasPrefix(s.Section.Name, ".init") {
			continue
		}
		out = append(out, s)
	}
	if len(out) != n {
		t.Fatalf("%s: %d symbols, the table has %d", found, len(out), n)
	}
	return out
}

// symbolCode is the bytes of s in its section (nil without contents).
func symbolCode(s *elfobj.Symbol) []byte {
	if s.Section.Type == elf.SHT_NOBITS || s.Value+s.Size > uint64(len(s.Section.Data)) {
		return nil
	}
	return s.Section.Data[s.Value : s.Value+s.Size]
}
