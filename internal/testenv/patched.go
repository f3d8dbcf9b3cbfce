package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/ktree"
)

// PatchedUnit is one translation unit of the test kernel compiled twice,
// before and after a patch, by ktree (kbuild's recorded command plus
// ObjectFlags, plus objtool), the patched side from a copy outside the
// tree.
type PatchedUnit struct {
	Object  string // path of the object in the tree, e.g. "fs/proc/loadavg.o"
	Source  string // the patched source file, e.g. "fs/proc/loadavg.c"
	Orig    string // the original object
	Patched string // the object compiled from the patched copy
	Module  bool   // compiled as part of a module (-DMODULE)
	ModName string // the module's name (KBUILD_MODNAME) when Module
	// OrigCRCs and PatchedCRCs are the MODVERSIONS CRCs genksyms computes
	// for the symbols the unit exports (empty when it exports none).
	OrigCRCs, PatchedCRCs map[string]uint32
}

// CompilePatch applies patch (a unified diff against the kernel tree) to
// copies of the files it touches and compiles every object it reaches
// twice, unpatched and patched, into the test cache. The shared source
// tree is never modified. No #line guards are inserted, so tests see
// __LINE__ shifts as a patch without them would produce.
func (k *Kernel) CompilePatch(ctx context.Context, patch []byte) ([]PatchedUnit, error) {
	p, err := ktree.ParsePatch(patch)
	if err != nil {
		return nil, err
	}
	t, err := k.Tree(ctx)
	if err != nil {
		return nil, err
	}
	objs, _, err := t.Objects(ctx, p)
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	key := []string{"patched-v5", t.Dir, string(patch)}
	for _, o := range objs {
		key = append(key, o.Name)
	}
	dir := filepath.Join(cache, "patched", Digest(key...))
	_, err = Cached(dir, func(dir string) error {
		_, err := t.CompilePatch(ctx, p, objs, dir, ktree.CompileOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]PatchedUnit, len(objs))
	for i, o := range objs {
		cmd, err := t.Command(o.Name)
		if err != nil {
			return nil, err
		}
		u := PatchedUnit{
			Object:  o.Name,
			Source:  o.Source,
			Orig:    filepath.Join(dir, "a", o.Name),
			Patched: filepath.Join(dir, "b", o.Name),
		}
		if owner := ktree.OwnerOf(cmd); owner != ktree.Vmlinux {
			u.Module, u.ModName = true, owner
		}
		if u.OrigCRCs, err = ktree.ReadSymvers(u.Orig + ".symvers"); err != nil {
			return nil, err
		}
		if u.PatchedCRCs, err = ktree.ReadSymvers(u.Patched + ".symvers"); err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

// CompileProbe compiles C source src with the kbuild flags of the tree
// object like (e.g. "kernel/fork.o"), without objtool, and returns the
// object's path. It is how tests learn facts only the target tree knows,
// such as the sizes of the kernel's special-section entries.
func (k *Kernel) CompileProbe(ctx context.Context, name string, src []byte, like string) (string, error) {
	t, err := k.Tree(ctx)
	if err != nil {
		return "", err
	}
	cmd, err := t.Command(like)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "probes", name+"-"+Digest("probe-v1", t.Dir, cmd, string(src)))
	_, err = Cached(dir, func(dir string) error {
		_, err := t.CompileProbe(ctx, name, src, like, dir)
		return err
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Dir(like), name+".o"), nil
}

// ReversePatch returns the unified diff that undoes patch: the two file
// names and each hunk's two ranges swapped, removed lines added and added
// lines removed. Text before and between the files (a description) is
// kept. A case whose patch takes a fix out of the newest kernel puts the
// fix in, reversed, on an older kernel that does not have it yet.
func ReversePatch(patch []byte) []byte {
	var out strings.Builder
	oldLeft, newLeft := 0, 0
	var minus string
	for line := range strings.Lines(string(patch)) {
		inHunk := oldLeft > 0 || newLeft > 0
		switch {
		case inHunk && strings.HasPrefix(line, " "):
			oldLeft, newLeft = oldLeft-1, newLeft-1
			out.WriteString(line)
		case inHunk && strings.HasPrefix(line, "-"):
			oldLeft--
			out.WriteString("+" + line[1:])
		case inHunk && strings.HasPrefix(line, "+"):
			newLeft--
			out.WriteString("-" + line[1:])
		case strings.HasPrefix(line, `\`):
			out.WriteString(line)
		case !inHunk && strings.HasPrefix(line, "--- "):
			minus = line[4:]
		case !inHunk && strings.HasPrefix(line, "+++ ") && minus != "":
			out.WriteString("--- " + swapSide(line[4:]) + "+++ " + swapSide(minus))
			minus = ""
		case !inHunk && strings.HasPrefix(line, "@@ -"):
			fields := strings.SplitN(line, " ", 4)
			if len(fields) < 4 || !strings.HasPrefix(fields[2], "+") {
				out.WriteString(line)
				continue
			}
			oldLeft, newLeft = rangeLen(fields[1][1:]), rangeLen(fields[2][1:])
			out.WriteString("@@ -" + fields[2][1:] + " +" + fields[1][1:] + " " + fields[3])
		default:
			out.WriteString(line)
		}
	}
	return []byte(out.String())
}

// swapSide turns a diff file name of one side into the other's ("a/x"
// and "b/x"), keeping /dev/null.
func swapSide(name string) string {
	switch {
	case strings.HasPrefix(name, "a/"):
		return "b/" + name[2:]
	case strings.HasPrefix(name, "b/"):
		return "a/" + name[2:]
	}
	return name
}

// rangeLen is the line count of a hunk range "start,count" ("start"
// alone is one line).
func rangeLen(r string) int {
	_, n, ok := strings.Cut(r, ",")
	if !ok {
		return 1
	}
	v, err := strconv.Atoi(n)
	if err != nil {
		return 0
	}
	return v
}

// PatchOrReverse returns patch when it applies to the test kernel's
// tree, else its reverse when that applies (the tree predates the fix
// the patch takes out), else an error naming the file.
func (k *Kernel) PatchOrReverse(ctx context.Context, patch []byte) ([]byte, error) {
	t, err := k.Tree(ctx)
	if err != nil {
		return nil, err
	}
	applies := func(p []byte) (bool, error) {
		pp, err := ktree.ParsePatch(p)
		if err != nil {
			return false, err
		}
		for _, path := range pp.Paths() {
			src, err := os.ReadFile(filepath.Join(t.Dir, path))
			if err != nil {
				return false, err
			}
			if _, err := pp.File(path).Apply(string(src), false); err != nil {
				return false, nil
			}
		}
		return true, nil
	}
	for _, p := range [][]byte{patch, ReversePatch(patch)} {
		ok, err := applies(p)
		if err != nil {
			return nil, err
		}
		if ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("the patch applies to %s in neither direction", t.Dir)
}
