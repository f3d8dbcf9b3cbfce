package ktree

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Object is a kernel object a patch reaches and the source it is
// compiled from.
type Object struct {
	Name   string // e.g. "fs/proc/cmdline.o"
	Source string // e.g. "fs/proc/cmdline.c"
	// Via is the changed header that brings the object in ("" when its
	// own source changed).
	Via string
}

// RefusedError says why a file of the patch cannot be live patched.
type RefusedError struct {
	File   string
	Reason string
}

func (e *RefusedError) Error() string { return e.File + ": " + e.Reason }

// MaxHeaderObjects bounds the objects one changed header may bring in.
const MaxHeaderObjects = 200

// refusedDirs are code that never runs as patchable kernel text.
var refusedDirs = []struct{ prefix, reason string }{
	{"lib/", "lib/ objects are refused: many are lib-y archive members linked only when something uses them, or built into the boot and decompressor code, so kelp cannot tell which copy runs"},
	{"arch/x86/entry/vdso/", "vDSO code runs in user space, mapped into every process; a livepatch cannot replace it"},
	{"arch/x86/boot/", "boot code runs before the kernel and is gone once it runs"},
	{"arch/x86/realmode/", "real-mode trampoline code is not ftrace-patchable kernel text"},
	{"arch/x86/purgatory/", "purgatory code runs between kernels (kexec), not in this one"},
	{"drivers/firmware/efi/libstub/", "the EFI stub runs before the kernel and is gone once it runs"},
	{"tools/", "tools/ is user-space code"},
	{"scripts/", "scripts/ are build tools, not kernel code"},
}

// ignoredFile tells whether a changed file plays no part in the kernel's
// code (documentation), so a patch may carry it.
func ignoredFile(p string) bool {
	return strings.HasPrefix(p, "Documentation/") || strings.HasSuffix(p, ".rst") || strings.HasSuffix(p, ".txt")
}

// Objects returns the objects the patch reaches: the object of each
// changed .c file and every enabled object that includes a changed
// header. Files that cannot be live patched are refused with the reason;
// ignored lists changed files without code (documentation).
func (t *Tree) Objects(ctx context.Context, p *Patch) (objs []Object, ignored []string, err error) {
	seen := map[string]bool{}
	add := func(o Object) {
		if !seen[o.Name] {
			seen[o.Name] = true
			objs = append(objs, o)
		}
	}
	ignored, err = CheckPaths(p)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range p.Files {
		if ignoredFile(f.Path) {
			continue
		}
		switch path.Ext(f.Path) {
		case ".c":
			add(Object{Name: strings.TrimSuffix(f.Path, ".c") + ".o", Source: f.Path})
		case ".h":
			deps, err := t.Dependents(ctx, f.Path)
			if err != nil {
				return nil, nil, err
			}
			if len(deps) > MaxHeaderObjects {
				return nil, nil, &RefusedError{File: f.Path, Reason: fmt.Sprintf("included by %d enabled objects (at most %d): change the few functions that need it in their .c files, or move the change into a header of its own", len(deps), MaxHeaderObjects)}
			}
			if len(deps) == 0 {
				return nil, nil, &RefusedError{File: f.Path, Reason: "no object enabled in this kernel's config includes this header"}
			}
			for _, d := range deps {
				if refusedPath(d) != nil {
					continue // boot, vdso and lib/ users keep the old header
				}
				add(Object{Name: strings.TrimSuffix(d, ".c") + ".o", Source: d, Via: f.Path})
			}
		}
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Name < objs[j].Name })
	if len(objs) == 0 {
		return nil, ignored, fmt.Errorf("patch changes no kernel code")
	}
	return objs, ignored, nil
}

// CheckPaths refuses, from the file names alone and before any tree is
// needed, a patch that changes files kelp cannot live patch: assembly,
// build files and configuration, code in the refused directories. It
// returns the files without code (documentation) the patch may carry.
func CheckPaths(p *Patch) (ignored []string, err error) {
	for _, f := range p.Files {
		if ignoredFile(f.Path) {
			ignored = append(ignored, f.Path)
			continue
		}
		if err := refusedPath(f.Path); err != nil {
			return nil, err
		}
		switch path.Ext(f.Path) {
		case ".c", ".h":
		case ".S", ".s":
			return nil, &RefusedError{File: f.Path, Reason: "assembly cannot be live patched: its code has no fentry call and no function boundaries kelp can trust; change the C code that calls it instead"}
		default:
			return nil, &RefusedError{File: f.Path, Reason: "only C sources and headers can be live patched (build files and configuration change the whole kernel)"}
		}
	}
	return ignored, nil
}

func refusedPath(p string) error {
	for _, d := range refusedDirs {
		if strings.HasPrefix(p, d.prefix) {
			return &RefusedError{File: p, Reason: d.reason}
		}
	}
	return nil
}
