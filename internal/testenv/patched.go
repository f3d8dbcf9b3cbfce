package testenv

import (
	"context"
	"path/filepath"

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
