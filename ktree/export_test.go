package ktree

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SetSettle sets how long ago a dependency must have changed for its
// inode's state to vouch for its content, and returns the previous value.
func SetSettle(d time.Duration) time.Duration {
	old := settle
	settle = d
	return old
}

// FilesHashed is how many files the object cache has read to hash them.
func FilesHashed() int64 { return filesHashed.Load() }

// The two sources of an object's command, for the tests of ktree_test.

func (t *Tree) RecordedCommand(ctx context.Context, raw string) (string, bool) {
	key, err := t.commandKey(ctx, raw)
	if err != nil {
		return "", false
	}
	return t.recordedCommand(ctx, raw, key)
}

func (t *Tree) DryRunCommand(ctx context.Context, raw string) (string, error) {
	return t.dryRun(ctx, raw)
}

func (t *Tree) KbuildName(ctx context.Context, obj string) (string, error) {
	return t.kbuildName(ctx, obj)
}

// CompileUnchanged compiles the tree's own source of obj as kelp compiles
// a patched object, into dir, and returns the object's path.
func (t *Tree) CompileUnchanged(ctx context.Context, obj, dir string) (string, error) {
	return t.compileUnchanged(ctx, obj, dir, patchedFlags(dir))
}

// CompileUnchangedUnpiped is CompileUnchanged with the assembly passed
// through a temporary file, as gcc does without -pipe.
func (t *Tree) CompileUnchangedUnpiped(ctx context.Context, obj, dir string) (string, error) {
	extra, ok := strings.CutSuffix(patchedFlags(dir), viaPipe)
	if !ok {
		return "", os.ErrInvalid
	}
	return t.compileUnchanged(ctx, obj, dir, extra)
}

func (t *Tree) compileUnchanged(ctx context.Context, obj, dir, extra string) (string, error) {
	cmd, err := t.Command(obj)
	if err != nil {
		return "", err
	}
	src := strings.TrimSuffix(obj, ".o") + ".c"
	copyPath := filepath.Join(dir, src)
	if err := os.MkdirAll(filepath.Dir(copyPath), 0o755); err != nil {
		return "", err
	}
	if err := copyFile(filepath.Join(t.Dir, src), copyPath); err != nil {
		return "", err
	}
	out := filepath.Join(dir, obj)
	return out, t.compileCopy(ctx, cmd, obj, src, copyPath, out, "", "", extra)
}

// DryRunLines is what kbuild's dry run of the whole tree prints on jobs
// cores: its fixdep lines (one per object command), sorted, and make's
// errors.
func (t *Tree) DryRunLines(ctx context.Context, jobs int) ([]string, string, error) {
	out, errs, err := t.wholeDryRun(ctx, jobs)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "scripts/basic/fixdep ") {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines, errs, err
}
