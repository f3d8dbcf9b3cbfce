package kmod

import (
	"os"
	"path/filepath"
	"strings"
)

// TakenNames are the module names a kernel already uses: the modules
// built into it and those it ships, each with where the name comes from.
// A livepatch module under one of these names cannot load (the kernel
// keeps one /sys/module/<name> per name: "module is already loaded") or
// keeps the real module from loading.
//
// A build asks about one or two names, so the lists are kept as read and
// searched for the name asked about (a few thousand lines), not indexed.
type TakenNames struct {
	// lists are the texts of takenLists, in order ("" when absent).
	lists [len(takenLists)]string
	// added are the names Add recorded (Where reads them after the
	// lists).
	added map[string]string
}

// takenLists are the lists of modulesDir a name is looked for in, in
// the order that says where a name listed twice comes from.
var takenLists = [...]string{"modules.builtin", "modules.dep", "modules.builtin.modinfo"}

// ReadTakenNames reads the names of modulesDir (/lib/modules/<release>):
// modules.builtin and modules.dep (module files), and the name prefixes
// of modules.builtin.modinfo (built-in code with parameters). found is
// false when the directory has none of these files.
func ReadTakenNames(modulesDir string) (names *TakenNames, found bool, err error) {
	names = &TakenNames{}
	for i, f := range takenLists {
		data, err := os.ReadFile(filepath.Join(modulesDir, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		found = true
		names.lists[i] = string(data)
	}
	return names, found, nil
}

// Where says where name is taken from, if it is.
func (t *TakenNames) Where(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for i, f := range takenLists {
		text := t.lists[i]
		if f == "modules.builtin.modinfo" {
			// "name.param=value" strings.
			for kv := range strings.SplitSeq(text, "\x00") {
				if n, _, ok := strings.Cut(kv, "."); ok && sameName(n, name) {
					return "built into the kernel (" + f + ")", true
				}
			}
			continue
		}
		pre := "shipped as "
		if f == "modules.builtin" {
			pre = "built into the kernel as "
		}
		// One line per module file: "path[: dependencies]".
		for line := range strings.Lines(text) {
			file, _, _ := strings.Cut(line, ":")
			if file = strings.TrimSpace(file); file != "" && sameName(moduleBase(file), name) {
				return pre + file + " (" + f + ")", true
			}
		}
	}
	where, ok := t.added[name]
	return where, ok
}

// Len is the number of names taken.
func (t *TakenNames) Len() int {
	all := map[string]bool{}
	for i, f := range takenLists {
		if f == "modules.builtin.modinfo" {
			for kv := range strings.SplitSeq(t.lists[i], "\x00") {
				if n, _, ok := strings.Cut(kv, "."); ok && n != "" {
					all[strings.ReplaceAll(n, "-", "_")] = true
				}
			}
			continue
		}
		for line := range strings.Lines(t.lists[i]) {
			if file, _, _ := strings.Cut(line, ":"); strings.TrimSpace(file) != "" {
				all[NameFromFile(strings.TrimSpace(file))] = true
			}
		}
	}
	for n := range t.added {
		all[n] = true
	}
	return len(all)
}

// Add records name as taken by where, unless it already is (Where
// answers from the lists first).
func (t *TakenNames) Add(name, where string) {
	name = strings.ReplaceAll(name, "-", "_")
	if _, ok := t.added[name]; ok {
		return
	}
	if t.added == nil {
		t.added = map[string]string{}
	}
	t.added[name] = where
}

// moduleBase is a module file's name without its directory and
// extensions (NameFromFile but for '-').
func moduleBase(path string) string {
	base := path[strings.LastIndexByte(path, '/')+1:]
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.TrimSuffix(base, ".ko")
}

// sameName tells whether the module name n, whose '-' is '_', is name.
func sameName(n, name string) bool {
	if len(n) != len(name) {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c == '-' {
			c = '_'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
