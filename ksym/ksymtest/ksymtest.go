// Package ksymtest provides the symbol tables of the test kernel to tests:
// its kallsyms dump, taken once from a boot under QEMU and cached, its
// Module.symvers and its module files.
package ksymtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/ksym"
)

// KallsymsPath returns the path of the test kernel's /proc/kallsyms as
// root sees it with no module loaded, dumped from a VM boot the first time
// and cached per kernel image.
func KallsymsPath(t testing.TB, k *testenv.Kernel) string {
	t.Helper()
	p, err := vmtest.Kallsyms(context.Background(), k)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	return p
}

var (
	kernelMu    sync.Mutex
	kernelCache = map[string]*ksym.Kernel{}
)

// Kernel returns the symbol knowledge of the test kernel: vmlinux from the
// kallsyms dump, the exports from its Module.symvers, and no modules (add
// them with Module).
func Kernel(t testing.TB, k *testenv.Kernel) *ksym.Kernel {
	t.Helper()
	kernelMu.Lock()
	defer kernelMu.Unlock()
	if ks := kernelCache[k.Release]; ks != nil {
		return ks
	}
	f, err := os.Open(KallsymsPath(t, k))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ka, err := ksym.ParseKallsyms(f)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := os.Open(filepath.Join(k.Headers, "Module.symvers"))
	if err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: "Module.symvers in " + k.Headers, Package: "linux-headers-" + k.Release})
	}
	defer sv.Close()
	exports, err := ksym.ParseSymvers(sv)
	if err != nil {
		t.Fatal(err)
	}
	ks := &ksym.Kernel{Vmlinux: ka.Object(ksym.Vmlinux), Modules: map[string]*ksym.Table{}, Exports: exports}
	kernelCache[k.Release] = ks
	return ks
}

// Module returns the symbol table of the installed module name (e.g.
// "ext4") from its .ko file.
func Module(t testing.TB, k *testenv.Kernel, name string) *ksym.Table {
	t.Helper()
	var found string
	filepath.WalkDir(filepath.Join(k.ModulesDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && ksym.ModuleName(p) == name {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		t.Fatalf("module %s not found under %s", name, k.ModulesDir)
	}
	if !strings.HasSuffix(found, ".ko") {
		t.Fatalf("module %s: compressed module files (%s) are not read", name, found)
	}
	f, err := elfobj.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	return ksym.ModuleTable(f, name)
}
