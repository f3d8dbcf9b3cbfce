package ktree

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
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
	env, err := t.kbuildEnv(ctx)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	args := []string{"-n", "-B", "-f", "./scripts/Makefile.build", "obj=.", "need-builtin=1", "need-modorder=1"}
	if t.Exec != nil {
		cmd = t.Exec.Command(ctx, t.Dir, env, "make", args...)
	} else {
		cmd = exec.CommandContext(ctx, "make", args...)
		cmd.Dir, cmd.Env = t.Dir, env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("kbuild's dry run of %s: %v: %s", t.Dir, err, tail(strings.TrimSpace(stderr.String()), 1))
	}
	objs := map[string]bool{}
	for _, line := range strings.Split(stdout.String(), "\n") {
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
