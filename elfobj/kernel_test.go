package elfobj

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// kernelObjects returns the compiled kernel object set (see
// testenv.KernelObjectSet); without the test kernel the test fails under
// CI and is skipped elsewhere.
func kernelObjects(t testing.TB) []testenv.KernelObject {
	t.Helper()
	k := testenv.RequireKernel(t)
	objs, err := k.Objects(context.Background(), testenv.KernelObjectSet())
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func kernelObject(t testing.TB, name string) testenv.KernelObject {
	t.Helper()
	for _, o := range kernelObjects(t) {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("%s is not in the kernel object set", name)
	return testenv.KernelObject{}
}

// TestKernelRoundTrip parses and writes every object of the set and
// checks the result with debug/elf, readelf, objdump and ld (see
// roundTrip and toolsAgree).
func TestKernelRoundTrip(t *testing.T) {
	objs := kernelObjects(t)
	checkSpread(t, objs)
	for _, o := range objs {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			out := roundTrip(t, data)
			toolsAgree(t, o.Path, out)
		})
	}
}

// checkSpread holds the object set to what the round trip must cover.
func checkSpread(t *testing.T, objs []testenv.KernelObject) {
	t.Helper()
	modules := 0
	perDir := map[string]int{}
	dirs := []string{"kernel/", "mm/", "fs/", "fs/proc/", "fs/ext4/", "net/core/", "net/ipv4/", "block/", "drivers/block/", "security/"}
	for _, o := range objs {
		if o.Module {
			modules++
		}
		for _, d := range dirs {
			if strings.HasPrefix(o.Name, d) {
				perDir[d]++
			}
		}
	}
	if len(objs) < 300 || modules < 20 {
		t.Errorf("%d objects (%d module objects), want at least 300 (20)", len(objs), modules)
	}
	for _, d := range dirs {
		if perDir[d] == 0 {
			t.Errorf("no object from %s", d)
		}
	}
	t.Logf("%d objects, %d module objects, per directory %v", len(objs), modules, perDir)
}

// The edit tests change real objects the way the differ and the module
// assembler will, then check the result with ld -r and against the
// disassembly binutils gives of the original, adjusted by hand for the
// edit.

func TestKernelEditRemoveFunction(t *testing.T) {
	for _, c := range []struct{ obj, fn string }{
		{"kernel/range.o", "subtract_range"},
		{"kernel/sched/core.o", "__sched_setscheduler"}, // static, called from several functions
	} {
		t.Run(c.obj, func(t *testing.T) {
			o := kernelObject(t, c.obj)
			f := readObject(t, o.Path)
			sec := f.Section(".text." + c.fn)
			if sec == nil || f.Symbol(c.fn) == nil {
				t.Fatalf("%s has no section .text.%s or no symbol %s", c.obj, c.fn, c.fn)
			}
			f.RemoveSection(sec)
			n := f.RemoveRelocs(func(_ *Section, r *Reloc) bool { return r.Symbol != nil && r.Symbol.Section == sec })
			if n == 0 {
				t.Errorf("no relocation referred to %s", c.fn)
			}
			path := writeObject(t, f, c.obj)
			ldAccepts(t, path)

			// The disassembly is the original's without the function and
			// without relocations against it or its section.
			want := objdumpListing(t, o.Path)
			want = dropBlock(want, "Disassembly of section .text."+c.fn+":")
			refs := regexp.MustCompile(`(?m)^.*\sR_X86_64_\w+\s+(` + regexp.QuoteMeta(c.fn) + `|\.text\.` + regexp.QuoteMeta(c.fn) + `)([+-]0x[0-9a-f]+)?\n`)
			want = refs.ReplaceAllString(want, "")
			if got := objdumpListing(t, path); got != want {
				t.Errorf("disassembly after the removal:\n%s", firstDiff(want, got))
			}
			listing := readelfListing(t, path)
			if regexp.MustCompile(`\s(\.rela)?\.text\.` + regexp.QuoteMeta(c.fn) + `\s|\s` + regexp.QuoteMeta(c.fn) + `\n`).MatchString(listing) {
				t.Errorf("readelf still shows %s or its sections", c.fn)
			}
		})
	}
}

func TestKernelEditAddSymbolAndReloc(t *testing.T) {
	o := kernelObject(t, "kernel/range.o")
	f := readObject(t, o.Path)
	hook := f.AddSymbol(&Symbol{Name: "kelp_hook", Bind: elf.STB_GLOBAL, Type: elf.STT_NOTYPE})
	data := f.AddSection(&Section{Name: ".data.kelp_hook_ptr", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: make([]byte, 8)})
	// A local symbol: every global symbol's index moves up by one, and
	// every existing relocation has to follow.
	f.AddSymbol(&Symbol{Name: "kelp_hook_ptr", Bind: elf.STB_LOCAL, Type: elf.STT_OBJECT, Section: data, Size: 8})
	f.AddRelocSection(data).Relocs = []Reloc{{Offset: 0, Type: uint32(elf.R_X86_64_64), Symbol: hook}}
	// Rewrite one relocation in existing code: add_range's fentry call
	// now calls the hook.
	rewritten := false
	for _, rs := range f.RelocSections(f.Section(".text.add_range")) {
		for i := range rs.Relocs {
			if r := &rs.Relocs[i]; r.Symbol != nil && r.Symbol.Name == "__fentry__" {
				r.Symbol = hook
				rewritten = true
			}
		}
	}
	if !rewritten {
		t.Fatal("no __fentry__ relocation in .text.add_range")
	}
	path := writeObject(t, f, "range.o")
	ldAccepts(t, path)

	want := objdumpListing(t, o.Path)
	block := sectionBlock(want, "Disassembly of section .text.add_range:")
	want = strings.Replace(want, block, strings.Replace(block, "__fentry__-0x4", "kelp_hook-0x4", 1), 1)
	if got := objdumpListing(t, path); got != want {
		t.Errorf("disassembly after adding the hook:\n%s", firstDiff(want, got))
	}
	listing := readelfListing(t, path)
	for _, re := range []string{
		`OBJECT  LOCAL  DEFAULT +\d+ kelp_hook_ptr\n`,
		`NOTYPE  GLOBAL DEFAULT +UND kelp_hook\n`,
		`Relocation section '\.rela\.data\.kelp_hook_ptr' contains 1 entry:\n.*\n0000000000000000 +\w+ R_X86_64_64 +0000000000000000 kelp_hook \+ 0\n`,
	} {
		if !regexp.MustCompile(re).MatchString(listing) {
			t.Errorf("readelf listing does not match %q", re)
		}
	}
}

func TestKernelEditRename(t *testing.T) {
	o := kernelObject(t, "kernel/range.o")
	f := readObject(t, o.Path)
	f.RenameSection(f.Section(".text.add_range"), ".text.kelp_renamed")
	path := writeObject(t, f, "range.o")
	ldAccepts(t, path)
	old := regexp.MustCompile(`\.text\.add_range\b`)
	if got, want := objdumpListing(t, path), old.ReplaceAllString(objdumpListing(t, o.Path), ".text.kelp_renamed"); got != want {
		t.Errorf("disassembly after the rename:\n%s", firstDiff(want, got))
	}
	spaces := regexp.MustCompile(` +`) // column widths follow the names
	got := spaces.ReplaceAllString(readelfListing(t, path), " ")
	want := spaces.ReplaceAllString(old.ReplaceAllString(readelfListing(t, o.Path), ".text.kelp_renamed"), " ")
	if got != want {
		t.Errorf("readelf listing after the rename:\n%s", firstDiff(want, got))
	}
}

func readObject(t testing.TB, path string) *File {
	t.Helper()
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func writeObject(t testing.TB, f *File, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// sectionBlock returns the part of an objdump listing from the header line
// to the next "Disassembly of section" (or the end).
func sectionBlock(listing, header string) string {
	i := strings.Index(listing, header)
	if i < 0 {
		return ""
	}
	rest := listing[i+len(header):]
	if j := strings.Index(rest, "Disassembly of section"); j >= 0 {
		return listing[i : i+len(header)+j]
	}
	return listing[i:]
}

func dropBlock(listing, header string) string {
	b := sectionBlock(listing, header)
	if b == "" {
		return listing
	}
	return strings.Replace(listing, b, "", 1)
}
