package ktree

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

var paramPrefixRE = regexp.MustCompile(`(?m)^\s*#\s*define\s+MODULE_PARAM_PREFIX\s+"([A-Za-z0-9_-]+)\.`)

// ParamPrefixNames returns the names built-in code registers under
// /sys/module through MODULE_PARAM_PREFIX (e.g. "module", "syscall",
// "rcupdate"): names no module list records, which a livepatch module
// cannot take. Read once from the tree's C files and kept in the tree.
func (t *Tree) ParamPrefixNames(ctx context.Context) ([]string, error) {
	if data, err := os.ReadFile(filepath.Join(t.Dir, paramPrefixFile)); err == nil {
		return strings.Fields(string(data)), nil
	}
	return keepParamPrefixNames(ctx, t.Dir)
}

// paramPrefixFile keeps a tree's ParamPrefixNames.
const paramPrefixFile = ".kelp-param-prefixes"

// keepParamPrefixNames reads the names from the C files of the tree in
// dir and keeps them there. It may run while the tree is prepared: a
// file or directory make removes meanwhile (its temporary files; make
// generates none of the files read for) is passed over.
func keepParamPrefixNames(ctx context.Context, dir string) ([]string, error) {
	cache := filepath.Join(dir, paramPrefixFile)
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if skippedDirs[rel] || strings.HasPrefix(rel, ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".c") && !strings.HasSuffix(rel, ".h") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte("MODULE_PARAM_PREFIX")) {
			return nil
		}
		for _, m := range paramPrefixRE.FindAllSubmatch(data, -1) {
			seen[strings.ReplaceAll(string(m[1]), "-", "_")] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	tmp := cache + ".tmp"
	if os.WriteFile(tmp, []byte(strings.Join(names, "\n")+"\n"), 0o644) == nil {
		os.Rename(tmp, cache)
	}
	return names, nil
}
