package build

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/ksym"
)

// DefaultKallsyms is the symbol source when building on the target.
const DefaultKallsyms = "/proc/kallsyms"

// loadSymbols reads the vmlinux symbols from a kallsyms dump or a vmlinux
// ELF file with a symbol table, and the exports from Module.symvers.
// A dump written by kelp symbols names the kernel it was taken on (hdr);
// a plain or older dump has no header (hdr nil).
func loadSymbols(symbols, symvers string) (k *ksym.Kernel, hdr *ksym.DumpHeader, err error) {
	data, err := os.ReadFile(symbols)
	if err != nil {
		return nil, nil, fmt.Errorf("symbols: %w", err)
	}
	k = &ksym.Kernel{Modules: map[string]*ksym.Table{}}
	if bytes.HasPrefix(data, []byte("\x7fELF")) {
		f, err := elfobj.Parse(data)
		if err != nil {
			return nil, nil, fmt.Errorf("symbols %s: %w", symbols, err)
		}
		k.Vmlinux = ksym.VmlinuxTable(f)
	} else {
		h, ok, err := ksym.ReadDumpHeader(data)
		if err != nil {
			return nil, nil, fmt.Errorf("symbols %s: %w", symbols, err)
		}
		if ok {
			hdr = &h
		}
		ka, err := ksym.ParseKallsymsString(unshared(data))
		if err != nil {
			return nil, nil, fmt.Errorf("symbols %s: %w", symbols, err)
		}
		// Only the order counts: a dump read without privilege (all
		// addresses zero) lists the symbols in the same order.
		k.Vmlinux = ka.Object(ksym.Vmlinux)
	}
	if k.Vmlinux == nil || len(k.Vmlinux.Syms) < 1000 {
		return nil, nil, fmt.Errorf("symbols %s: not a kallsyms dump or a vmlinux with a symbol table", symbols)
	}
	sv, err := os.ReadFile(symvers)
	if err != nil {
		return nil, nil, fmt.Errorf("exported symbols: %w (install the kernel's headers package)", err)
	}
	if k.Exports, err = ksym.ParseSymversString(unshared(sv)); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", symvers, err)
	}
	return k, hdr, nil
}

// unshared is data, which nothing writes once read, as a string without
// a copy: the tables' names are slices of it, and copying a kernel's
// dump (some 4 MB, into fresh memory) costs a third of its parse.
func unshared(data []byte) string { return unsafe.String(unsafe.SliceData(data), len(data)) }

// moduleTable reads the symbol table of module name from its .ko under
// modulesDir (/lib/modules/<release>).
func moduleTable(modulesDir, name string) (*ksym.Table, error) {
	found, data, err := moduleFile(modulesDir, name)
	if err != nil {
		return nil, err
	}
	f, err := elfobj.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("module %s: %s: %w", name, found, err)
	}
	return ksym.ModuleTable(f, name), nil
}

// moduleFile finds module name's .ko (or .ko.xz, .ko.zst) under
// modulesDir and returns its path and uncompressed contents.
func moduleFile(modulesDir, name string) (string, []byte, error) {
	name = strings.ReplaceAll(name, "-", "_")
	var found string
	filepath.WalkDir(modulesDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, ".ko") && ksym.ModuleName(p) == name {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		return "", nil, fmt.Errorf("module %s of the patch not found under %s", name, modulesDir)
	}
	data, err := os.ReadFile(found)
	if err != nil {
		return "", nil, fmt.Errorf("module %s: %w", name, err)
	}
	// Debian 13 ships its modules compressed (.ko.xz).
	if data, err = kmod.Decompress(data); err != nil {
		return "", nil, fmt.Errorf("module %s: %s: %w", name, found, err)
	}
	return found, data, nil
}

// dependsOn reports whether module name depends on module dep, directly
// or through the modules it depends on, by the depends= entries of their
// .modinfo (what modprobe loads first). modules.dep is not used: a kernel
// package unpacked but not installed has none.
func dependsOn(modulesDir, name, dep string) (bool, error) {
	seen := map[string]bool{name: true}
	queue := []string{name}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		_, data, err := moduleFile(modulesDir, m)
		if err != nil {
			return false, err
		}
		mod, err := kmod.Parse(data)
		if err != nil {
			return false, fmt.Errorf("module %s: %w", m, err)
		}
		for _, list := range mod.Info["depends"] {
			for _, d := range strings.Split(list, ",") {
				// depends= names modules as their files do (snd-pcm);
				// the kernel, and kelp, as snd_pcm.
				d = strings.ReplaceAll(d, "-", "_")
				if d == "" || seen[d] {
					continue
				}
				if d == dep {
					return true, nil
				}
				seen[d] = true
				queue = append(queue, d)
			}
		}
	}
	return false, nil
}
