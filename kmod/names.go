package kmod

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// TakenNames are the module names a kernel already uses: the modules
// built into it and those it ships, each with where the name comes from.
// A livepatch module under one of these names cannot load (the kernel
// keeps one /sys/module/<name> per name: "module is already loaded") or
// keeps the real module from loading.
type TakenNames map[string]string

// ReadTakenNames reads the names of modulesDir (/lib/modules/<release>):
// modules.builtin and modules.dep (module files), and the name prefixes
// of modules.builtin.modinfo (built-in code with parameters). found is
// false when the directory has none of these files.
func ReadTakenNames(modulesDir string) (names TakenNames, found bool, err error) {
	names = TakenNames{}
	for _, f := range []string{"modules.builtin", "modules.dep", "modules.builtin.modinfo"} {
		data, err := os.ReadFile(filepath.Join(modulesDir, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		found = true
		if f == "modules.builtin.modinfo" {
			for _, kv := range bytes.Split(data, []byte{0}) {
				if name, _, ok := strings.Cut(string(kv), "."); ok && name != "" {
					names.Add(name, "built into the kernel ("+f+")")
				}
			}
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			file, _, _ := strings.Cut(sc.Text(), ":")
			if file = strings.TrimSpace(file); file == "" {
				continue
			}
			where := "shipped as " + file + " (" + f + ")"
			if f == "modules.builtin" {
				where = "built into the kernel as " + file + " (" + f + ")"
			}
			names.Add(NameFromFile(file), where)
		}
	}
	return names, found, nil
}

// Add records name as taken by where, unless it already is.
func (t TakenNames) Add(name, where string) {
	name = strings.ReplaceAll(name, "-", "_")
	if _, ok := t[name]; !ok {
		t[name] = where
	}
}
