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
type TakenNames struct {
	m map[string]takenBy
}

// takenBy says where a name comes from: pre+file+post, file a module
// file's path (a part of the list it was read from, not a copy).
type takenBy struct{ pre, file, post string }

// ReadTakenNames reads the names of modulesDir (/lib/modules/<release>):
// modules.builtin and modules.dep (module files), and the name prefixes
// of modules.builtin.modinfo (built-in code with parameters). found is
// false when the directory has none of these files.
func ReadTakenNames(modulesDir string) (names *TakenNames, found bool, err error) {
	lists := []string{"modules.builtin", "modules.dep", "modules.builtin.modinfo"}
	texts := make([]string, len(lists))
	size := 0
	for i, f := range lists {
		data, err := os.ReadFile(filepath.Join(modulesDir, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		found = true
		texts[i] = string(data)
		size += strings.Count(texts[i], "\n")
	}
	names = &TakenNames{m: make(map[string]takenBy, size)}
	for i, text := range texts {
		f := lists[i]
		if f == "modules.builtin.modinfo" {
			// "name.param=value" strings; each run of one name's
			// strings adds it once.
			by := takenBy{pre: "built into the kernel (" + f + ")"}
			last := ""
			for kv := range strings.SplitSeq(text, "\x00") {
				if name, _, ok := strings.Cut(kv, "."); ok && name != "" && name != last {
					last = name
					names.add(name, by)
				}
			}
			continue
		}
		by := takenBy{pre: "shipped as ", post: " (" + f + ")"}
		if f == "modules.builtin" {
			by.pre = "built into the kernel as "
		}
		// One line per module file: "path[: dependencies]".
		for line := range strings.Lines(text) {
			file, _, _ := strings.Cut(line, ":")
			if file = strings.TrimSpace(file); file == "" {
				continue
			}
			by.file = file
			names.add(NameFromFile(file), by)
		}
	}
	return names, found, nil
}

// Where says where name is taken from, if it is.
func (t *TakenNames) Where(name string) (string, bool) {
	by, ok := t.m[name]
	if !ok {
		return "", false
	}
	return by.pre + by.file + by.post, true
}

// Len is the number of names taken.
func (t *TakenNames) Len() int { return len(t.m) }

// Add records name as taken by where, unless it already is.
func (t *TakenNames) Add(name, where string) { t.add(name, takenBy{pre: where}) }

func (t *TakenNames) add(name string, by takenBy) {
	name = strings.ReplaceAll(name, "-", "_")
	if t.m == nil {
		t.m = map[string]takenBy{}
	}
	if _, ok := t.m[name]; !ok {
		t.m[name] = by
	}
}
