package ktree

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// ConfiguredObjects returns every object kbuild compiles from C or
// assembly for the tree's config, into vmlinux or a module: a dry run of
// the whole tree from its root (scripts/Makefile.build obj=., descending
// as kbuild does for `make`), read from the fixdep command kbuild records
// for each object. A single-object build (`make dir/file.o`, what kelp
// compiles) builds any object, configured or not; this says which ones
// the target kernel was built from.
func (t *Tree) ConfiguredObjects(ctx context.Context) (map[string]bool, error) {
	stdout, stderr, err := t.makeDryRun(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("kbuild's dry run of %s: %v: %s", t.Dir, err, tail(strings.TrimSpace(stderr), 1))
	}
	objs := map[string]bool{}
	for _, line := range strings.Split(stdout, "\n") {
		_, rest, ok := strings.Cut(line, "scripts/basic/fixdep ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || !strings.HasSuffix(f[1], ".o") {
			continue
		}
		// amdgpu builds ../pm/, ../display/ objects from its own
		// Makefile: the object is the cleaned path.
		objs[path.Clean(f[1])] = true
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("kbuild's dry run of %s names no object", t.Dir)
	}
	return objs, nil
}
