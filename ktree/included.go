package ktree

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/refusal"
)

// objectsOfC returns the objects a changed .c file is compiled into: its
// own object, and the objects of the .c files that #include it
// (kernel/sched/build_policy.c includes rt.c, deadline.c, ...). An
// including object counts when it is enabled in the config and kbuild's
// dependency list of it (written as the original object is compiled into
// the object cache with kbuild's command) names the file: an #include
// under a disabled #ifdef is not a use. Which objects the config builds
// is kbuild's word: its dry run of the whole tree (kbuildObjects).
func (t *Tree) objectsOfC(ctx context.Context, file string) ([]Object, error) {
	own := Object{Name: strings.TrimSuffix(file, ".c") + ".o", Source: file}
	g, err := t.cIncludes(ctx)
	if err != nil {
		return nil, err
	}
	built, err := t.kbuildObjects(ctx)
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
			if _, ok := built.raw(obj); ok {
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
		deps := make([]map[string]bool, len(cands))
		err := parallel(ctx, len(cands), t.Jobs, func(i int) error {
			var err error
			deps[i], err = t.OriginalDeps(ctx, cands[i].Name)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i, c := range cands {
			if deps[i][file] {
				out = append(out, c)
			}
		}
	}
	// Its own object, when kbuild builds one.
	if _, ok := built.raw(own.Name); ok {
		out = append([]Object{own}, out...)
	}
	if len(out) == 0 && len(cands) == 0 {
		return nil, refusal.New(file, "not built by this kernel's config: kbuild's build of the kernel compiles no object from it, and no object it builds #includes it (its config option is off, or it is another architecture's code), so the running kernel has none of its code", "")
	}
	if len(out) == 0 {
		names := make([]string, len(cands))
		for i, c := range cands {
			names[i] = c.Name
		}
		return nil, refusal.New(file, fmt.Sprintf("not compiled in this kernel's config: it has no object of its own, and the compiler's dependency lists of %s, which #include it, do not name it (an #ifdef leaves it out)", strings.Join(names, ", ")), "")
	}
	return out, nil
}
