package klpmod

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/ksym"
)

// combined is a patch made of several corpus patches touching different
// files: units whose special sections (__jump_table, .static_call_sites,
// __bug_table, ...) carry livepatch relocations and merge in the link.
var combined = []string{"body-change", "new-global-cross-object", "new-static-data", "static-local-kept", "tracepoint", "clone-part-cold", "exception-table", "jump-label-vmlinux"}

func combinedPatch(t testing.TB, names ...string) []byte {
	var b []byte
	for _, n := range names {
		b = append(b, patchFile(t, n)...)
	}
	return b
}

// TestBuild assembles modules from corpus patches and checks the result
// against what objdiff reported: every changed function is a klp_func
// whose new function is defined in the module, every livepatch relocation
// of every unit is in the right .klp.rela section at the right place
// against the right .klp.sym symbol, no ordinary relocation is left
// against a livepatch symbol, and the module's modinfo and __versions are
// those of a livepatch for the target kernel.
func TestBuild(t *testing.T) {
	k := testenv.RequireKernel(t)
	cases := []struct {
		name  string
		patch []byte
	}{
		{"body-change", patchFile(t, "body-change")},
		{"cmdline-string", patchFile(t, "cmdline-string")},
		{"new-global-cross-object", patchFile(t, "new-global-cross-object")},
		{"static-local-kept", patchFile(t, "static-local-kept")},
		{"combined", combinedPatch(t, combined...)},
		// A unit of the ext4 module: a klp_object named ext4, its
		// relocations in .klp.rela.ext4.* sections.
		{"ext4-feature-string", patchFile(t, "ext4-feature-string")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			units := diffUnits(t, k, c.patch)
			m, err := Build(context.Background(), units, Options{
				Name: "kelp_" + sanitize(c.name), Kernel: k.Release, Headers: k.Headers, Replace: true,
				Modinfo: map[string]string{"kelp.kernel": k.Release, "kelp.patch": "sha256:0123"},
				WorkDir: t.TempDir(),
			})
			if err != nil {
				logKbuild(t, err)
				t.Fatal(err)
			}
			checkModule(t, k, m, units)
		})
	}
}

func logKbuild(t testing.TB, err error) {
	var ke *KbuildError
	if errors.As(err, &ke) {
		t.Logf("kbuild output:\n%s", ke.Output)
	}
}

func checkModule(t *testing.T, k *testenv.Kernel, m *Module, units []Unit) {
	t.Helper()
	f, err := elfobj.ReadFile(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	km, err := kmod.Open(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !km.Livepatch || km.Name != m.Name || kmod.Release(km.Vermagic) != k.Release {
		t.Errorf("modinfo: livepatch %v, name %q, vermagic %q", km.Livepatch, km.Name, km.Vermagic)
	}
	if got := km.Info["kelp.kernel"]; !slices.Equal(got, []string{k.Release}) {
		t.Errorf("modinfo kelp.kernel = %q", got)
	}
	if got := km.Info["license"]; !slices.Equal(got, []string{"GPL"}) {
		t.Errorf("modinfo license = %q", got)
	}

	// klp_funcs: one per changed function of every unit.
	var want, got []string
	for _, u := range units {
		for _, c := range u.Diff.Report.Changed {
			want = append(want, fmt.Sprintf("%s:%s,%d", u.Object, c.Name, c.Sympos))
		}
	}
	for _, o := range m.Objects {
		for _, fn := range o.Funcs {
			got = append(got, fmt.Sprintf("%s:%s,%d", o.Name, fn.OldName, fn.Sympos))
			s := f.Symbol(fn.NewFunc)
			if s == nil || s.Section == nil || s.Type != elf.STT_FUNC || s.Section.Flags&elf.SHF_EXECINSTR == 0 {
				t.Errorf("%s: new function %s not defined in code", fn.OldName, fn.NewFunc)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("klp_funcs %q, want %q", got, want)
	}

	// Livepatch relocation sections and symbols as the kernel wants them.
	var final []string
	for _, s := range f.Sections {
		if !strings.HasPrefix(s.Name, ".klp.rela.") {
			for _, r := range s.Relocs {
				if r.Symbol != nil && (r.Symbol.IsLivepatch() || r.Symbol.Section == nil && r.Symbol.Shndx == elf.SHN_UNDEF && strings.HasPrefix(r.Symbol.Name, "__kelp_")) {
					t.Errorf("%s: ordinary relocation against %s", s.Name, r.Symbol.Name)
				}
			}
			continue
		}
		obj, sec, _ := elfobj.ParseKlpRelaName(s.Name)
		if s.Type != elf.SHT_RELA || s.Flags != elf.SHF_ALLOC|elf.SHF_INFO_LINK|elfobj.SHFRelaLivepatch || s.Link != f.Symtab || s.Info == nil || s.Info.Name != sec || s.Entsize != 24 {
			t.Errorf("%s: type %v flags %#x link %v info %v entsize %d", s.Name, s.Type, uint64(s.Flags), s.Link, s.Info, s.Entsize)
			continue
		}
		for _, r := range s.Relocs {
			ks, err := parseKlpSym(r.Symbol)
			if err != nil || !r.Symbol.IsLivepatch() || ks.Object != obj && (ks.Object == "vmlinux" || obj == "vmlinux") {
				t.Errorf("%s: relocation against %s (%v)", s.Name, r.Symbol, err)
				continue
			}
			if s.Info.Type != elf.SHT_NOBITS {
				size := map[uint32]uint64{1: 8, 2: 4, 4: 4, 10: 4, 11: 4, 24: 8}[r.Type]
				if size == 0 || r.Offset+size > uint64(len(s.Info.Data)) {
					t.Errorf("%s: relocation type %d at %#x", s.Name, r.Type, r.Offset)
				} else if !bytes.Equal(s.Info.Data[r.Offset:r.Offset+size], make([]byte, size)) {
					// The kernel refuses to relocate a non-zero field.
					t.Errorf("%s: field at %#x is not zero", s.Name, r.Offset)
				}
			}
			final = append(final, fmt.Sprintf("%s|%s|%s,%d|%s|%d", sec, obj, ks.Name, ks.Sympos, f.Arch().RelocName(r.Type), r.Addend))
		}
	}
	var reported []string
	for _, u := range units {
		for _, r := range u.Diff.Report.KlpRelocs {
			reported = append(reported, fmt.Sprintf("%s|%s|%s,%d|%s|%d", r.Section, r.Object, r.Symbol, r.Sympos, r.Type, r.Addend))
		}
	}
	slices.Sort(final)
	slices.Sort(reported)
	if !slices.Equal(final, reported) {
		t.Errorf("livepatch relocations of the module:\n%s\nreported by objdiff:\n%s", strings.Join(final, "\n"), strings.Join(reported, "\n"))
	}
	if len(m.KlpRelocs) != len(reported) {
		t.Errorf("Module.KlpRelocs has %d entries, want %d", len(m.KlpRelocs), len(reported))
	}
	// Inside a changed function, the relocation is where objdiff put it,
	// relative to the function's new symbol.
	for _, u := range units {
		for _, c := range u.Diff.Report.Changed {
			var alias *elfobj.Symbol
			for _, o := range m.Objects {
				for _, fn := range o.Funcs {
					if fn.Unit == u.Diff.Report.Unit && fn.OldName == c.Name {
						alias = f.Symbol(fn.NewFunc)
					}
				}
			}
			if alias == nil {
				continue
			}
			for _, r := range u.Diff.Report.KlpRelocs {
				if r.Section != c.Section {
					continue
				}
				if !slices.ContainsFunc(m.KlpRelocs, func(x KlpReloc) bool {
					return x.Section == alias.Section.Name && x.Offset == alias.Value+r.Offset && x.Symbol == r.Symbol && x.Addend == r.Addend
				}) {
					t.Errorf("%s: no relocation to %s at %s+%#x", c.Name, r.Symbol, alias.Name, r.Offset)
				}
			}
		}
	}

	// __versions carries the target's CRC of every export the units use.
	exports := readSymvers(t, k)
	vers := f.Section("__versions")
	for _, u := range units {
		for _, e := range u.Diff.Report.Exports {
			if vers == nil || !hasVersion(vers.Data, e.Name, exports[e.Name].CRC) {
				t.Errorf("__versions lacks %s with CRC %#x", e.Name, exports[e.Name].CRC)
			}
		}
	}
}

func readSymvers(t *testing.T, k *testenv.Kernel) ksym.Symvers {
	t.Helper()
	r, err := os.Open(k.Headers + "/Module.symvers")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sv, err := ksym.ParseSymvers(r)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

// hasVersion looks for struct modversion_info {unsigned long crc; char
// name[56];} in __versions.
func hasVersion(data []byte, name string, crc uint32) bool {
	for off := 0; off+64 <= len(data); off += 64 {
		n := data[off+8 : off+64]
		if i := bytes.IndexByte(n, 0); i >= 0 && string(n[:i]) == name {
			return uint32(data[off])|uint32(data[off+1])<<8|uint32(data[off+2])<<16|uint32(data[off+3])<<24 == crc
		}
	}
	return false
}

// TestDeterministic builds the same module several times in different
// work directories, from units diffed anew each time: the bytes are
// equal. The combined patch has several units whose livepatch symbols
// are shared, which the post-link step merges.
func TestDeterministic(t *testing.T) {
	k := testenv.RequireKernel(t)
	for _, c := range []struct {
		name  string
		patch []byte
		runs  int
	}{
		{"body-change", patchFile(t, "body-change"), 2},
		{"combined", combinedPatch(t, combined...), 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			var first []byte
			for i := 0; i < c.runs; i++ {
				m, err := Build(context.Background(), diffUnits(t, k, c.patch), Options{
					Name: "kelp_same", Kernel: k.Release, Headers: k.Headers, Replace: true, WorkDir: t.TempDir(),
				})
				if err != nil {
					logKbuild(t, err)
					t.Fatal(err)
				}
				data, err := os.ReadFile(m.Path)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = data
				} else if !bytes.Equal(data, first) {
					t.Fatalf("build %d differs from the first (%d and %d bytes)", i+1, len(data), len(first))
				}
			}
		})
	}
}
