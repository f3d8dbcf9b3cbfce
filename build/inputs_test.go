package build_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ktree"
	"github.com/kelp-project/kelp/refusal"
)

// fakeTarget is a target kernel whose inputs exist but whose source
// tarball does not: a build that gets as far as the tree fails there, after
// creating the tree cache directory.
type fakeTarget struct {
	dir, cache, config, headers, symbols string
}

const fakeRelease = "6.1.0-99-amd64"

func newFakeTarget(t *testing.T) *fakeTarget {
	t.Helper()
	d := t.TempDir()
	f := &fakeTarget{dir: d, cache: filepath.Join(d, "trees"), config: filepath.Join(d, "config"), headers: filepath.Join(d, "headers")}
	if err := os.WriteFile(f.config, []byte("CONFIG_LIVEPATCH=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.headers, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.headers, "Module.symvers"), []byte("0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.symbols = f.dump(t, "dump", &ksym.DumpHeader{Release: fakeRelease, BuildID: "0123456789abcdef0123456789abcdef01234567"})
	return f
}

// dump writes a kallsyms dump of 1200 symbols, with header h unless nil.
func (f *fakeTarget) dump(t *testing.T, name string, h *ksym.DumpHeader) string {
	t.Helper()
	var sb strings.Builder
	if h != nil {
		sb.WriteString(h.String() + "\n")
	}
	for i := 0; i < 1200; i++ {
		fmt.Fprintf(&sb, "ffffffff81%06x T kelp_fake_%d\n", i*16, i)
	}
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fakeTarget) options(patch string) build.Options {
	return build.Options{
		Patches: []string{patch},
		Tree: ktree.Options{
			Release: fakeRelease, Config: f.config, Headers: f.headers, CacheDir: f.cache,
			SourceTar: filepath.Join(f.dir, "linux-source-missing.tar.xz"), SkipCompilerCheck: true,
		},
		Symbols: f.symbols,
		OutDir:  filepath.Join(f.dir, "out"),
	}
}

func (f *fakeTarget) patch(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func diffOf(file string) string {
	return "--- a/" + file + "\n+++ b/" + file + "\n@@ -1,2 +1,3 @@\n a\n+b\n c\n"
}

// TestCheapRefusals: what kelp can refuse without the source tree is
// refused before the tree cache directory is even created, with the reason
// on one line.
func TestCheapRefusals(t *testing.T) {
	cases := []struct {
		name   string
		patch  string // file contents
		mutate func(f *fakeTarget, o *build.Options)
		want   []string
	}{
		{"assembly", diffOf("arch/x86/lib/memcpy_64.S"), nil, []string{"arch/x86/lib/memcpy_64.S", "assembly cannot be live patched"}},
		{"makefile", diffOf("kernel/Makefile"), nil, []string{"kernel/Makefile", "only C sources and headers"}},
		{"kconfig", diffOf("mm/Kconfig"), nil, []string{"mm/Kconfig", "only C sources and headers"}},
		{"lib", diffOf("lib/string.c"), nil, []string{"lib/string.c", "lib/ code is compiled without the ftrace entry call"}},
		{"vdso", diffOf("arch/x86/entry/vdso/vclock_gettime.c"), nil, []string{"vDSO code runs in user space"}},
		{"boot", diffOf("arch/x86/boot/main.c"), nil, []string{"boot code runs before the kernel"}},
		{"empty", "", nil, []string{"the file is empty"}},
		{"not a diff", "Subject: a fix\n\nThis mail has no diff in it.\n", nil, []string{"not a unified diff"}},
		{"new file", "--- /dev/null\n+++ b/kernel/new.c\n@@ -0,0 +1 @@\n+int x;\n", nil, []string{"kernel/new.c", "a new file cannot be live patched"}},
		{"no symbols file", diffOf("kernel/fork.c"), func(f *fakeTarget, o *build.Options) { o.Symbols = filepath.Join(f.dir, "no-such-kallsyms") }, []string{"no-such-kallsyms"}},
		{"no config", diffOf("kernel/fork.c"), func(f *fakeTarget, o *build.Options) { o.Tree.Config = filepath.Join(f.dir, "no-such-config") }, []string{"no-such-config", "--config"}},
		{"no headers", diffOf("kernel/fork.c"), func(f *fakeTarget, o *build.Options) { o.Tree.Headers = filepath.Join(f.dir, "no-such-headers") }, []string{"no-such-headers", "Module.symvers", "--headers"}},
		{"dump of another kernel", diffOf("kernel/fork.c"), func(f *fakeTarget, o *build.Options) {
			o.Symbols = f.dump(t, "other", &ksym.DumpHeader{Release: "6.1.0-12-amd64"})
		}, []string{"6.1.0-12-amd64", fakeRelease}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeTarget(t)
			opts := f.options(f.patch(t, "fix.patch", c.patch))
			if c.mutate != nil {
				c.mutate(f, &opts)
			}
			_, err := build.Build(context.Background(), opts)
			if err == nil {
				t.Fatal("built; want a refusal")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			if _, serr := os.Stat(f.cache); serr == nil {
				t.Errorf("the tree cache %s was created before the refusal", f.cache)
			}
			if _, serr := os.Stat(opts.OutDir); serr == nil {
				t.Errorf("output directory %s created", opts.OutDir)
			}
		})
	}
}

// TestSymbolsDumpAccepted: a dump of the target (with its header) and a
// headerless one (a plain /proc/kallsyms copy, or an older kelp's) pass
// the checks before the tree; the fake target then fails at its missing
// tarball.
func TestSymbolsDumpAccepted(t *testing.T) {
	f := newFakeTarget(t)
	for _, syms := range []string{f.symbols, f.dump(t, "plain", nil)} {
		opts := f.options(f.patch(t, "fix.patch", diffOf("kernel/fork.c")))
		opts.Symbols = syms
		_, err := build.Build(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "linux-source-missing.tar.xz") {
			t.Errorf("%s: error %v; want the missing source tarball", filepath.Base(syms), err)
		}
	}
}

// TestModuleNameTaken: a name given with --name that the target uses is
// refused before the tree; one derived from the patch file is prefixed.
func TestModuleNameTaken(t *testing.T) {
	f := newFakeTarget(t)
	mods := filepath.Join(f.dir, "modules")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mods, "modules.dep"), []byte("kernel/drivers/net/dummy.ko:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := f.options(f.patch(t, "fix.patch", diffOf("kernel/fork.c")))
	opts.ModulesDir = mods
	opts.Name = "dummy"
	_, err := build.Build(context.Background(), opts)
	var re *refusal.Error
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "kernel/drivers/net/dummy.ko") || !strings.Contains(err.Error(), "--name") {
		t.Errorf("--name dummy: %v; want a refusal naming kernel/drivers/net/dummy.ko", err)
	}
	if _, serr := os.Stat(f.cache); serr == nil {
		t.Errorf("the tree cache was created before the refusal")
	}
	opts = f.options(f.patch(t, "dummy.patch", diffOf("drivers/net/dummy.c")))
	opts.ModulesDir = mods
	res, err := build.Build(context.Background(), opts)
	if res == nil || res.Name != "kelp_dummy" || err == nil || !strings.Contains(err.Error(), "linux-source-missing.tar.xz") {
		t.Errorf("dummy.patch: %+v, %v; want the name kelp_dummy, then the missing tarball", res, err)
	}
}
