package proto

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// ModuleDeps is a parsed modules.dep: module name → its file (relative to
// /lib/modules/<release>) and the files it depends on, in modules.dep
// order.
type ModuleDeps struct {
	files map[string]string   // name → file
	deps  map[string][]string // file → dependency files
}

// ModuleName normalizes a module file or name ("kernel/fs/ext4/ext4.ko",
// "virtio-blk") to the kernel's module name ("ext4", "virtio_blk").
func ModuleName(s string) string {
	base := path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.TrimSuffix(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// ParseModuleDeps reads modules.dep.
func ParseModuleDeps(r io.Reader) (*ModuleDeps, error) {
	md := &ModuleDeps{files: map[string]string{}, deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep line %d: no colon", n)
		}
		if name := ModuleName(file); name == "" || name == "." || name == "/" {
			return nil, fmt.Errorf("modules.dep line %d: %q names no module file", n, file)
		}
		md.files[ModuleName(file)] = file
		md.deps[file] = strings.Fields(rest)
	}
	return md, sc.Err()
}

// LoadOrder returns the files to load for the named modules, every
// dependency before the modules that need it, each file once.
func (md *ModuleDeps) LoadOrder(names []string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(file string)
	visit = func(file string) {
		if seen[file] {
			return
		}
		seen[file] = true
		// modules.dep lists dependencies so that the last must be loaded
		// first; visiting them in reverse keeps that order.
		deps := md.deps[file]
		for i := len(deps) - 1; i >= 0; i-- {
			visit(deps[i])
		}
		order = append(order, file)
	}
	for _, n := range names {
		file, ok := md.files[ModuleName(n)]
		if !ok {
			return nil, fmt.Errorf("module %s not in modules.dep", n)
		}
		visit(file)
	}
	return order, nil
}
