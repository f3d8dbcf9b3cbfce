package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/ksym/ksymtest"
	"github.com/kelp-project/kelp/ktree"
)

func writeDump(t *testing.T, dir, name, header string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(header+"ffffffff81000000 T _stext\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPickSymbols: dumps are matched to kernels by the release their
// header names; a dump naming no kernel, of no target, or a second dump
// of one kernel stops the whole build before it starts.
func TestPickSymbols(t *testing.T) {
	dir := t.TempDir()
	a := writeDump(t, dir, "a", "# kelp symbols: release=6.1.0-57-amd64 build-id=00ff\n")
	b := writeDump(t, dir, "b", "# kelp symbols: release=6.12.117+deb13-cloud-amd64\n")
	a2 := writeDump(t, dir, "a2", "# kelp symbols: release=6.1.0-57-amd64\n")
	plain := writeDump(t, dir, "plain", "")
	kernels := []string{"6.1.0-57-amd64", "6.12.117+deb13-cloud-amd64", "6.1.0-58-amd64"}

	picked, errs := build.PickSymbols(kernels, []string{b, a})
	if errs[""] != nil || picked["6.1.0-57-amd64"] != a || picked["6.12.117+deb13-cloud-amd64"] != b || picked["6.1.0-58-amd64"] != "" {
		t.Errorf("picked %v, errors %v", picked, errs)
	}
	for _, tc := range []struct {
		dumps []string
		want  string
	}{
		{[]string{a, a2}, "are both of kernel 6.1.0-57-amd64"},
		{[]string{plain}, "names no kernel"},
		{[]string{writeDump(t, dir, "other", "# kelp symbols: release=5.10.0-30-amd64\n")}, "is of kernel 5.10.0-30-amd64, which is not among the targets"},
		{[]string{filepath.Join(dir, "missing")}, "no such file"},
	} {
		_, errs := build.PickSymbols(kernels, tc.dumps)
		err := errs[""]
		if err == nil || !errors.Is(err, build.ErrDumpKernel) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dumps %v: got %v, want an error with %q", tc.dumps, err, tc.want)
			continue
		}
		for _, k := range kernels {
			if errs[k] != err {
				t.Errorf("dumps %v: kernel %s has error %v, want the set's", tc.dumps, k, errs[k])
			}
		}
	}
}

// TestDumpsFor: a directory of the whole fleet's dumps gives each target
// kernel its own and leaves the others out; files are kept as given.
func TestDumpsFor(t *testing.T) {
	dir := t.TempDir()
	a := writeDump(t, dir, "a.syms", "# kelp symbols: release=6.1.0-57-amd64\n")
	b := writeDump(t, dir, "b.syms", "# kelp symbols: release=6.1.0-57-cloud-amd64\n")
	writeDump(t, dir, "c.syms", "# kelp symbols: release=6.12.117+deb13-amd64\n")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	got, err := build.DumpsFor([]string{"6.1.0-57-cloud-amd64", "6.1.0-57-amd64"}, []string{dir})
	if err != nil || strings.Join(got, ",") != a+","+b {
		t.Errorf("got %q, %v; want %s and %s", got, err, a, b)
	}
	if got, err := build.DumpsFor([]string{"6.1.0-57-amd64"}, []string{b}); err != nil || len(got) != 1 || got[0] != b {
		t.Errorf("a file is kept as given (PickSymbols checks it): %q, %v", got, err)
	}
	writeDump(t, dir, "plain", "")
	if _, err := build.DumpsFor([]string{"6.1.0-57-amd64"}, []string{dir}); err == nil || !strings.Contains(err.Error(), "names no kernel") {
		t.Errorf("a dump naming no kernel in the directory: %v", err)
	}
}

func TestReadKernelList(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kernels")
	os.WriteFile(p, []byte("# the fleet\n6.1.0-57-amd64\n\n  6.12.117+deb13-cloud-amd64  # cloud\n"), 0o644)
	got, err := build.ReadKernelList(p)
	if err != nil || strings.Join(got, ",") != "6.1.0-57-amd64,6.12.117+deb13-cloud-amd64" {
		t.Errorf("got %q, %v", got, err)
	}
	for content, want := range map[string]string{
		"# none\n\n":            "names no kernel",
		"6.1.0-57-amd64 x\n":    `:1: "6.1.0-57-amd64 x" is not a kernel release`,
		"a\n../../etc/passwd\n": `:2: "../../etc/passwd" is not a kernel release`,
	} {
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := build.ReadKernelList(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
	if _, err := build.DistinctKernels([]string{"a", "b", "a"}); err == nil || !strings.Contains(err.Error(), "kernel a is given twice") {
		t.Errorf("repeated kernel: %v", err)
	}
}

// TestBuildKernels builds two patches of different subsystems for two
// kernels in one run the way a build machine does, from the distribution's
// packages (the cloud kernel's image is not installed here: its headers
// package gives its version and config), each kernel with its own symbols
// dump; a third kernel that is not on the machine fails on its own. Each
// module then loads on its own kernel in the VM and changes what it should.
func TestBuildKernels(t *testing.T) {
	generic := testenv.RequireKernel(t)
	cloud := testenv.RequireKernelOf(t, testenv.Cloud61Kernel)
	missing := "6.1.0-1-amd64"
	out := t.TempDir()
	var mu sync.Mutex
	var events []string
	opts := build.Options{
		Patches: []string{"../testdata/patches/cmdline-string.patch", "../testdata/patches/syscall-uname.patch"},
		Name:    "fleet_fix",
		OutDir:  out,
		Tree: ktree.Options{
			// The tests build with whatever gcc-12 the machine has.
			SkipCompilerCheck: true,
		},
		Progress: func(e build.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e.Message)
		},
	}
	dumps := []string{ksymtest.KallsymsPath(t, cloud), ksymtest.KallsymsPath(t, generic)}
	results := build.BuildKernels(context.Background(), opts, []string{generic.Release, missing, cloud.Release}, dumps)
	if len(results) != 3 {
		t.Fatalf("%d results for 3 kernels", len(results))
	}
	if r := results[1]; r.Kernel != missing || r.Err == nil || !strings.Contains(r.Err.Error(), "linux-headers-"+missing) {
		t.Errorf("kernel %s not on the machine: got %+v", missing, r)
	}
	if _, err := os.Stat(filepath.Join(out, missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed kernel left its output directory: %v", err)
	}
	if got := build.Failed(results); len(got) != 1 || got[0] != missing {
		t.Errorf("failed kernels %v", got)
	}
	for _, i := range []int{0, 2} {
		r := results[i]
		k := generic
		if i == 2 {
			k = cloud
		}
		if r.Err != nil {
			t.Fatalf("kernel %s: %v", r.Kernel, r.Err)
		}
		ko := filepath.Join(out, k.Release, "fleet_fix.ko")
		if r.Kernel != k.Release || r.Result.Kernel != k.Release || r.Result.Module != ko {
			t.Errorf("kernel %s: result %+v", k.Release, r.Result)
		}
		m, err := kmod.Open(ko)
		if err != nil {
			t.Fatal(err)
		}
		if v := strings.Fields(m.Vermagic); len(v) == 0 || v[0] != k.Release {
			t.Errorf("%s: vermagic %q", ko, m.Vermagic)
		}
		if !strings.Contains(strings.Join(events, "\n"), k.Release+": ") {
			t.Errorf("no progress names kernel %s: %q", k.Release, events)
		}
		res := vmtest.RunT(t, vmtest.Config{
			Kernel: k,
			Files:  []vmtest.File{{Path: "/root/fleet_fix.ko", Host: ko}},
			Steps: []vmtest.Step{
				{Name: "before", Shell: "! grep -q kelp.cmdline=patched /proc/cmdline && ! uname -v | grep -q ' kelp$'"},
				{Name: "load", Shell: "kelp load /root/fleet_fix.ko"},
				{Name: "loaded", Shell: "grep -q kelp.cmdline=patched /proc/cmdline && uname -v | grep -q ' kelp$' && uname -r"},
			},
		})
		for _, s := range []string{"before", "load"} {
			res.MustStep(t, s)
		}
		if got := strings.TrimSpace(res.MustStep(t, "loaded").Stdout); got != k.Release {
			t.Errorf("module for %s ran on %q", k.Release, got)
		}
	}
}
