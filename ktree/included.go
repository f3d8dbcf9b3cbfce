package ktree

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// objectsOfC returns the objects a changed .c file is compiled into: its
// own object, and the objects of the .c files that #include it
// (kernel/sched/build_policy.c includes rt.c, deadline.c, ...). An
// including object counts when it is enabled in the config and kbuild's
// own dependency record of it (its .<obj>.cmd, after it is built) lists
// the file: an #include under a disabled #ifdef is not a use.
func (t *Tree) objectsOfC(ctx context.Context, file string) ([]Object, error) {
	own := Object{Name: strings.TrimSuffix(file, ".c") + ".o", Source: file}
	g, err := t.includes(ctx)
	if err != nil {
		return nil, err
	}
	mk, err := t.makefiles()
	if err != nil {
		return nil, err
	}
	// The .c files that include file, directly or through other
	// included .c files.
	var cands []Object
	seen := map[string]bool{file: true}
	queue := []string{file}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		for _, by := range g[f] {
			if seen[by] || !strings.HasSuffix(by, ".c") {
				continue
			}
			seen[by] = true
			queue = append(queue, by)
			obj := strings.TrimSuffix(by, ".c") + ".o"
			if mk.enabled(obj, 0) {
				cands = append(cands, Object{Name: obj, Source: by, Via: file})
			}
		}
	}
	users := make([]string, len(cands))
	for i, c := range cands {
		users[i] = c.Source
	}
	if err := unpatchableUsers(file, users); err != nil {
		return nil, err
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Name < cands[j].Name })
	var out []Object
	if len(cands) > 0 {
		names := make([]string, len(cands))
		for i, c := range cands {
			names[i] = c.Name
		}
		if err := t.BuildObjects(ctx, names, nil); err != nil {
			return nil, err
		}
		for _, c := range cands {
			deps, err := t.Deps(c.Name)
			if err != nil {
				return nil, err
			}
			if deps[file] {
				out = append(out, c)
			}
		}
	}
	// Its own object: when kbuild builds one, or when nothing includes
	// the file (kbuild then says what it makes of it).
	if mk.enabled(own.Name, 0) || len(out) == 0 && len(cands) == 0 {
		out = append([]Object{own}, out...)
	}
	if len(out) == 0 {
		names := make([]string, len(cands))
		for i, c := range cands {
			names[i] = c.Name
		}
		return nil, &RefusedError{File: file, Reason: fmt.Sprintf("not compiled in this kernel's config: it has no object of its own, and kbuild's dependency records of %s, which #include it, do not list it (an #ifdef leaves it out)", strings.Join(names, ", "))}
	}
	return out, nil
}

// Deps returns the files kbuild's dependency record of obj (the deps_
// list of its .<obj>.cmd) names.
func (t *Tree) Deps(obj string) (map[string]bool, error) {
	p := filepath.Join(t.Dir, filepath.FromSlash(path.Dir(obj)), "."+path.Base(obj)+".cmd")
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("kernel object %s: kbuild dependency record: %w", obj, err)
	}
	defer f.Close()
	deps := map[string]bool{}
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		l := sc.Text()
		if !in {
			in = strings.HasPrefix(l, "deps_"+obj+" :=")
			continue
		}
		word := strings.TrimSpace(strings.TrimSuffix(l, `\`))
		if word != "" && !strings.HasPrefix(word, "$(") {
			deps[word] = true
		}
		if !strings.HasSuffix(l, `\`) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !in {
		return nil, fmt.Errorf("kernel object %s: %s has no deps_ list", obj, p)
	}
	return deps, nil
}
