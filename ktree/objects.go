package ktree

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/kelp-project/kelp/refusal"
)

// Object is a kernel object a patch reaches and the source it is
// compiled from.
type Object struct {
	Name   string // e.g. "fs/proc/cmdline.o"
	Source string // e.g. "fs/proc/cmdline.c"
	// Via is the changed header, or the changed .c file the object's
	// source #includes, that brings the object in ("" when its own
	// source changed).
	Via string
}

// MaxHeaderObjects bounds the objects one changed header may bring in.
const MaxHeaderObjects = 200

// refusedDirs are code that never runs as patchable kernel text.
var refusedDirs = []struct{ prefix, reason string }{
	{"lib/", "lib/ code is compiled without the ftrace entry call livepatch redirects through (lib/Makefile removes CC_FLAGS_FTRACE), and many lib/ objects are archive members linked only when used, or also built into the boot and decompressor code"},
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
	if len(ignored) < len(p.Files) {
		// kbuild's dry run of the whole tree (on a fresh tree most of
		// the time of a build) runs while the tree's include graph is
		// read; its result is awaited where it is used.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.kbuildObjects(ctx)
		}()
		defer wg.Wait()
	}
	for _, f := range p.Files {
		if ignoredFile(f.Path) {
			continue
		}
		switch path.Ext(f.Path) {
		case ".c":
			cobjs, err := t.objectsOfC(ctx, f.Path)
			if err != nil {
				return nil, nil, err
			}
			for _, o := range cobjs {
				add(o)
			}
		case ".h":
			deps, err := t.Dependents(ctx, f.Path)
			if err != nil {
				return nil, nil, err
			}
			if len(deps) > MaxHeaderObjects {
				return nil, nil, refusal.New(f.Path, fmt.Sprintf("included by %d enabled objects (at most %d)", len(deps), MaxHeaderObjects), "change the few functions that need it in their .c files, or move the change into a header of its own")
			}
			if len(deps) == 0 {
				return nil, nil, refusal.New(f.Path, "no object enabled in this kernel's config includes this header", "")
			}
			if err := unpatchableUsers(f.Path, deps); err != nil {
				return nil, nil, err
			}
			for _, d := range deps {
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
			return nil, refusal.New(f.Path, "assembly cannot be live patched: its code has no fentry call and no function boundaries kelp can trust", "change the C code that calls it instead")
		default:
			return nil, refusal.New(f.Path, "only C sources and headers can be live patched (build files and configuration change the whole kernel)", "")
		}
	}
	return ignored, nil
}

// unpatchableUsers refuses a changed file (a header, or a .c file other
// .c files include) that code kelp cannot live patch compiles in: lib/,
// boot, vDSO and the like would keep the old code while the other users
// change, so the patch would apply half-way.
func unpatchableUsers(file string, users []string) error {
	var bad []string
	why := map[string]bool{}
	var reasons []string
	for _, u := range users {
		err := refusedPath(u)
		if err == nil {
			continue
		}
		bad = append(bad, u)
		r := err.Reasons[0].Reason
		if !why[r] {
			why[r] = true
			reasons = append(reasons, r)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	const show = 5
	list := strings.Join(bad, ", ")
	if len(bad) > show {
		list = strings.Join(bad[:show], ", ") + fmt.Sprintf(" and %d more", len(bad)-show)
	}
	return refusal.New(file, fmt.Sprintf("compiled into %d object(s) that cannot be live patched: %s (%s); patching the other users only would change the kernel half-way", len(bad), list, strings.Join(reasons, "; ")), "change the functions that need it in their .c files instead")
}

func refusedPath(p string) *refusal.Error {
	for _, d := range refusedDirs {
		if strings.HasPrefix(p, d.prefix) {
			return refusal.New(p, d.reason, "")
		}
	}
	return nil
}
