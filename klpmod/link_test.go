package klpmod

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestLinkIsKbuilds: the module linked with kbuild's recorded commands,
// its init object and NAME.mod.o written from the link template, is the
// module kbuild's make links from the same units and kelp-data.o,
// compiling the init file and modpost's NAME.mod.c, section by section
// (so .modinfo, __versions and struct module too) and byte for byte,
// twice: a vmlinux patch, a module (ext4) patch and a module of several
// units from different subsystems.
func TestLinkIsKbuilds(t *testing.T) {
	k := testenv.RequireKernel(t)
	for _, name := range []string{"cmdline-string", "ext4-feature-string", "combined"} {
		t.Run(name, func(t *testing.T) {
			var patch []byte
			if name == "combined" {
				patch = combinedPatch(t, combined...)
			} else {
				patch = patchFile(t, name)
			}
			opts := Options{
				Name: "kelp_" + sanitize(name), Kernel: k.Release, Headers: k.Headers, Replace: true,
				Modinfo:  map[string]string{"kelp.kernel": k.Release},
				CacheDir: t.TempDir(),
			}
			if !directLink(opts) {
				t.Fatalf("%s has a vmlinux: the test kernel's headers should not", k.Headers)
			}
			var mods [3]*Module
			for i, viaMake := range []bool{true, false, false} {
				o := opts
				o.Kbuild = viaMake
				o.WorkDir = t.TempDir()
				// Fresh units for each build, as kelp build has.
				units := diffUnits(t, k, patch)
				m, err := Build(t.Context(), units, o)
				if err != nil {
					logKbuild(t, err)
					t.Fatal(err)
				}
				mods[i] = m
			}
			if _, ok := mods[0].Timings["kbuild"]; !ok {
				t.Fatalf("the make build did not run kbuild: %v", mods[0].Timings)
			}
			if _, ok := mods[1].Timings["link"]; !ok {
				t.Fatalf("the direct build ran kbuild: %v", mods[1].Timings)
			}
			// Neither the init nor the .mod object is compiled for a
			// module: both are written from the link template.
			if _, err := os.Stat(filepath.Join(opts.CacheDir, "objects")); !os.IsNotExist(err) {
				t.Errorf("compiled objects were kept (%v): the init and .mod objects should be written", err)
			}
			for i, m := range mods[1:] {
				if m.CompiledObjects != 0 || m.CachedObjects != 0 {
					t.Errorf("direct build %d: %d objects compiled, %d from the cache; want both written from the template", i+1, m.CompiledObjects, m.CachedObjects)
				}
				compareModules(t, mods[0].Path, m.Path)
			}
		})
	}
}

// compareModules compares the module at p with kbuild's at want, section
// by section, then byte for byte.
func compareModules(t *testing.T, want, p string) {
	t.Helper()
	a, err := elf.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(a.Sections) != len(b.Sections) {
		t.Fatalf("%d sections, kbuild's module has %d", len(b.Sections), len(a.Sections))
	}
	for i, sa := range a.Sections {
		sb := b.Sections[i]
		if sa.SectionHeader != sb.SectionHeader {
			t.Errorf("section %d: header %+v, kbuild's %+v", i, sb.SectionHeader, sa.SectionHeader)
			continue
		}
		if sa.Type == elf.SHT_NOBITS {
			continue
		}
		da, err := sa.Data()
		if err != nil {
			t.Fatal(err)
		}
		db, err := sb.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("section %s: content differs from kbuild's", sa.Name)
		}
	}
	fa, fb := readFile(t, want), readFile(t, p)
	if !bytes.Equal(fa, fb) {
		t.Errorf("module of %d bytes differs from kbuild's (%d bytes)", len(fb), len(fa))
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPlainCommand: a command of plain words runs without a shell, the
// final link's "; true" left out; anything the shell would read
// otherwise (quotes, pipes, variables, redirections, several commands,
// an assignment) runs through it.
func TestPlainCommand(t *testing.T) {
	for cmd, want := range map[string]string{
		"ld -m elf_x86_64 -z noexecstack --no-warn-rwx-segments   -r -o /w/k.o @/w/k.mod":   "ld|-m|elf_x86_64|-z|noexecstack|--no-warn-rwx-segments|-r|-o|/w/k.o|@/w/k.mod",
		"ld -r --build-id=sha1  -T arch/x86/module.lds -o /w/k.ko /w/k.o /w/k.mod.o;  true": "ld|-r|--build-id=sha1|-T|arch/x86/module.lds|-o|/w/k.ko|/w/k.o|/w/k.mod.o",
		"scripts/mod/modpost -m -o /w/Module.symvers -e -i /w/kernel.symvers -T /w/list":    "scripts/mod/modpost|-m|-o|/w/Module.symvers|-e|-i|/w/kernel.symvers|-T|/w/list",
	} {
		argv, ok := plainCommand(cmd)
		if got := strings.Join(argv, "|"); !ok || got != want {
			t.Errorf("%q: %q, %v; want %q", cmd, got, ok, want)
		}
	}
	for _, cmd := range []string{
		"sed 's/ko$/o/' /w/modules.order | scripts/mod/modpost -T -",
		"gcc -DKBUILD_MODNAME='\"k\"' -c -o k.o k.c",
		"ld -o $OUT k.o", "ld -o k.ko k.o > log", "ld -o k.ko k.o; rm k.o", "ld -o k.ko k.o && true",
		"LD_PRELOAD=x.so ld -o k.ko k.o", "ld -o k.ko k.o; false", "",
	} {
		if argv, ok := plainCommand(cmd); ok {
			t.Errorf("%q runs without a shell as %q", cmd, argv)
		}
	}
}
