package ktree

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// includeDirs are where kbuild looks for <...> includes on x86, in order.
var includeDirs = []string{
	"arch/x86/include", "arch/x86/include/generated", "include",
	"arch/x86/include/uapi", "arch/x86/include/generated/uapi",
	"include/uapi", "include/generated/uapi",
}

// skippedDirs hold no kernel objects.
var skippedDirs = map[string]bool{
	".git": true, "Documentation": true, "tools": true, "samples": true,
	"scripts": true, "usr": true, "debian": true,
}

// includeGraph maps each file (path in the tree) to the files that
// #include it.
type includeGraph map[string][]string

// Dependents returns the C sources of objects enabled in the tree's config
// that include header, directly or through other headers or included .c
// files, sorted; code outside the kernel image (vDSO, boot) is listed
// whatever the config. The
// include graph of the tree is computed once and kept in the tree.
func (t *Tree) Dependents(ctx context.Context, header string) ([]string, error) {
	g, err := t.includes(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{header: true}
	queue := []string{header}
	var srcs []string
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		for _, by := range g[f] {
			if seen[by] {
				continue
			}
			seen[by] = true
			if strings.HasSuffix(by, ".c") {
				srcs = append(srcs, by)
			}
			// A .c file may itself be #included by another .c
			// (kernel/sched/build_policy.c includes rt.c): follow it.
			queue = append(queue, by)
		}
	}
	mk, err := t.makefiles()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range srcs {
		// vDSO, boot, real-mode and other code outside the kernel image
		// is built through Makefile variables of its own (vobjs-y,
		// targets), not obj-y: an x86 kernel builds it whatever the
		// config, so it counts as a user without the check.
		outside := refusedPath(s) != nil && !strings.HasPrefix(s, "lib/")
		if outside || mk.enabled(strings.TrimSuffix(s, ".c")+".o", 0) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// makefiles reads the tree's config for enabled().
func (t *Tree) makefiles() (*makefiles, error) {
	cfg, err := os.ReadFile(filepath.Join(t.Dir, ".config"))
	if err != nil {
		return nil, err
	}
	return &makefiles{dir: t.Dir, config: parseConfig(cfg), cache: map[string][]assign{}}, nil
}

// includeWord is what every #include line says.
var includeWord = []byte("include")

var includeRE = regexp.MustCompile(`^\s*#\s*include\s*([<"])([^>"]+)[>"]`)

func (t *Tree) includes(ctx context.Context) (includeGraph, error) {
	cache := filepath.Join(t.Dir, ".kelp-includes.gob")
	if g, ok := readGraph(cache); ok {
		return g, nil
	}
	var files []string
	err := filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(t.Dir, p)
		if d.IsDir() {
			if skippedDirs[rel] || strings.HasPrefix(rel, "arch/") && !strings.HasPrefix(rel+"/", "arch/x86/") && rel != "arch" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".c") || strings.HasSuffix(rel, ".h") {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan includes: %w", err)
	}
	exists := make(map[string]bool, len(files))
	for _, f := range files {
		exists[f] = true
	}
	edges := make([][]string, len(files))
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(files) {
					return
				}
				edges[i] = scanIncludes(t.Dir, files[i], exists)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := includeGraph{}
	for i, f := range files {
		for _, inc := range edges[i] {
			g[inc] = append(g[inc], f)
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(g); err == nil {
		tmp := cache + ".tmp"
		if os.WriteFile(tmp, buf.Bytes(), 0o644) == nil {
			os.Rename(tmp, cache)
		}
	}
	return g, nil
}

// cIncludes is the part of the include graph between .c files: for each
// .c file, the .c files that #include it. It is what finding the objects
// of a patched .c file needs, a few hundred edges kept in a file of their
// own (derived once from the whole graph, which is megabytes to read).
func (t *Tree) cIncludes(ctx context.Context) (includeGraph, error) {
	cache := filepath.Join(t.Dir, ".kelp-c-includes.gob")
	if g, ok := readGraph(cache); ok {
		return g, nil
	}
	all, err := t.includes(ctx)
	if err != nil {
		return nil, err
	}
	g := includeGraph{}
	for f, by := range all {
		if !strings.HasSuffix(f, ".c") {
			continue
		}
		for _, b := range by {
			if strings.HasSuffix(b, ".c") {
				g[f] = append(g[f], b)
			}
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(g); err == nil {
		if err := atomicfile.WriteFile(cache, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// readGraph reads a recorded include graph; ok is false when there is
// none that decodes.
func readGraph(file string) (g includeGraph, ok bool) {
	f, err := os.Open(file)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	return g, gob.NewDecoder(f).Decode(&g) == nil
}

// scanIncludes returns the files of the tree that file includes.
func scanIncludes(dir, file string, exists map[string]bool) []string {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	var out []string
	// Only the lines that say "include" can be #include lines: the
	// search jumps from one to the next.
	for i := 0; ; {
		j := bytes.Index(data[i:], includeWord)
		if j < 0 {
			break
		}
		j += i
		start := bytes.LastIndexByte(data[:j], '\n') + 1
		end := bytes.IndexByte(data[j:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += j
		}
		i = end
		m := includeRE.FindSubmatch(data[start:end])
		if m == nil {
			continue
		}
		name := string(m[2])
		if m[1][0] == '"' {
			if p := path.Join(path.Dir(file), name); exists[p] {
				out = append(out, p)
				continue
			}
		}
		for _, d := range includeDirs {
			if p := path.Join(d, name); exists[p] {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// parseConfig reads the options a config sets (CONFIG_X=value lines;
// "is not set" comments set nothing).
func parseConfig(cfg []byte) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(cfg), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			out[k] = v
		}
	}
	return out
}

// assign is one "lhs += a.o b/ ..." line of a kbuild Makefile.
type assign struct {
	lhs   string
	words []string
}

// makefiles answers, from the kbuild Makefiles and the config, whether
// an object is built: it is listed in its directory's Makefile under
// obj-y, obj-m, obj-$(CONFIG_X) with X set, or as part of a composite
// object that is; and its directory is, in the same way, in its parent's.
type makefiles struct {
	dir    string
	config map[string]string
	cache  map[string][]assign
}

var configRefRE = regexp.MustCompile(`\$\((CONFIG_[A-Za-z0-9_]+)\)`)

func (m *makefiles) enabled(obj string, depth int) bool {
	if depth > 8 {
		return false
	}
	dir, base := path.Split(obj)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return true // top-level directories are listed by the top Makefile
	}
	for _, a := range m.assigns(dir) {
		for _, w := range a.words {
			if w != base {
				continue
			}
			lhs, on := m.evalLHS(a.lhs)
			if !on {
				continue
			}
			switch {
			case lhs == "obj", lhs == "lib":
				return m.dirEnabled(dir, depth)
			case lhs != "" && lhs+".o" != base:
				// Part of the composite object lhs.o.
				if m.enabled(path.Join(dir, lhs+".o"), depth+1) {
					return true
				}
			}
		}
	}
	return false
}

// evalLHS splits "name-$(CONFIG_X)" / "name-y" / "name-objs" into name
// and whether the condition holds.
func (m *makefiles) evalLHS(lhs string) (string, bool) {
	if name, ok := strings.CutSuffix(lhs, "-objs"); ok {
		return name, true
	}
	i := strings.Index(lhs, "-")
	if i < 0 {
		return "", false
	}
	name, cond := lhs[:i], lhs[i+1:]
	switch cond {
	case "y", "m":
		return name, true
	}
	refs := configRefRE.FindAllStringSubmatch(cond, -1)
	if len(refs) == 0 {
		return name, false
	}
	for _, r := range refs {
		if v := m.config[r[1]]; v != "y" && v != "m" {
			return name, false
		}
	}
	return name, true
}

func (m *makefiles) dirEnabled(dir string, depth int) bool {
	parent, base := path.Split(dir)
	parent = strings.TrimSuffix(parent, "/")
	if parent == "" || dir == "arch/x86" {
		return true
	}
	if parent == "arch" {
		return false
	}
	return m.listedAsDir(parent, base+"/", depth)
}

// listedAsDir handles directories added through obj-y-like lines that
// name them with a path relative to the parent (e.g. "sched/").
func (m *makefiles) listedAsDir(parent, name string, depth int) bool {
	for _, a := range m.assigns(parent) {
		for _, w := range a.words {
			if w == name {
				if lhs, on := m.evalLHS(a.lhs); on && (lhs == "obj" || lhs == "subdir") {
					return m.dirEnabled(parent, depth+1)
				}
			}
		}
	}
	return false
}

// assigns reads the += / := / = lines of dir's Kbuild or Makefile,
// continuation lines joined.
func (m *makefiles) assigns(dir string) []assign {
	if as, ok := m.cache[dir]; ok {
		return as
	}
	var as []assign
	for _, name := range []string{"Kbuild", "Makefile"} {
		data, err := os.ReadFile(filepath.Join(m.dir, dir, name))
		if err != nil {
			continue
		}
		text := strings.ReplaceAll(string(data), "\\\n", " ")
		for _, l := range strings.Split(text, "\n") {
			if i := strings.Index(l, "#"); i >= 0 {
				l = l[:i]
			}
			var lhs, rhs string
			for _, op := range []string{"+=", ":=", "="} {
				if a, b, ok := strings.Cut(l, op); ok {
					lhs, rhs = strings.TrimSpace(a), b
					break
				}
			}
			if lhs == "" || strings.ContainsAny(lhs, " \t") {
				continue
			}
			as = append(as, assign{lhs: lhs, words: strings.Fields(rhs)})
		}
	}
	m.cache[dir] = as
	return as
}
