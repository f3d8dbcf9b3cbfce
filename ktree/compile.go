package ktree

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Unit is one translation unit compiled before and after a patch, exactly
// as kbuild compiles it in the tree (its recorded command plus
// ObjectFlags, then objtool), the patched side from a copy outside the
// tree.
type Unit struct {
	Object  string // path of the object in the tree, e.g. "fs/proc/cmdline.o"
	Source  string // its source file, e.g. "fs/proc/cmdline.c"
	Owner   string // "vmlinux" or the module the object is linked into
	Orig    string // the original object
	Patched string // the object compiled from the patched sources
	// OrigCached tells whether Orig came from the object cache.
	OrigCached bool
	// PatchedHead tells whether Patched was compiled after a precompiled
	// head of its source (pch.go).
	PatchedHead bool
	// OrigCRCs and PatchedCRCs are the MODVERSIONS CRCs genksyms
	// computes for the symbols the unit exports (empty when none).
	OrigCRCs, PatchedCRCs map[string]uint32
}

// Module tells whether the unit is part of a module.
func (u Unit) Module() bool { return u.Owner != Vmlinux }

// Vmlinux is the owner name of built-in objects.
const Vmlinux = "vmlinux"

// CompileOptions tune CompilePatch.
type CompileOptions struct {
	// LineGuards inserts #line directives after each changed hunk so
	// code after it keeps its __LINE__.
	LineGuards bool
	// Include is a directory of headers for patch authors (e.g.
	// kelp/patch.h), searched after the tree's own.
	Include string
	// Step reports what is compiled, before it starts.
	Step func(msg string)
	// Idle, when set, is called once, as soon as fewer compiles are left
	// to run than t.Jobs: from then on a core is free for other work.
	Idle func()
}

// CompilePatch compiles the objects the patch reaches, original and
// patched, into work, up to t.Jobs compilers at once. The tree's sources
// are never modified: the original objects come from the object cache
// (compiled with kbuild's command the first time), the patched ones are
// compiled from copies in work/b (with the patched headers found before
// the tree's), by the same command.
func (t *Tree) CompilePatch(ctx context.Context, p *Patch, objs []Object, work string, opts CompileOptions) ([]Unit, error) {
	if len(objs) == 0 {
		return nil, fmt.Errorf("patch changes no object")
	}
	overlay := filepath.Join(work, "b")
	headers := false
	for _, f := range p.Files {
		if ignoredFile(f.Path) {
			// No code: most of Documentation is not extracted.
			continue
		}
		if strings.HasSuffix(f.Path, ".h") {
			headers = true
		}
		src, err := os.ReadFile(filepath.Join(t.Dir, f.Path))
		if err != nil {
			return nil, fmt.Errorf("patch %s: %w", f.Path, err)
		}
		out, err := f.Apply(string(src), opts.LineGuards)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(overlay, f.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, []byte(out), 0o644); err != nil {
			return nil, err
		}
	}
	units := make([]Unit, len(objs))
	cmds := make([]string, len(objs))
	err := parallel(ctx, len(objs), t.Jobs, func(i int) error {
		o := objs[i]
		cmd, err := t.Command(o.Name)
		if err != nil {
			return err
		}
		cmds[i] = cmd
		units[i] = Unit{Object: o.Name, Source: o.Source, Owner: OwnerOf(cmd),
			Orig:    filepath.Join(work, "a", o.Name),
			Patched: filepath.Join(overlay, o.Name)}
		if p.File(o.Source) == nil {
			return copyFile(filepath.Join(t.Dir, o.Source), filepath.Join(overlay, o.Source))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.Step != nil {
		opts.Step(fmt.Sprintf("compiling %d object(s), original (unless cached) and patched", len(units)))
	}
	inc := ""
	if headers {
		inc = overlay
	}
	// Jobs 0..n-1 are the originals, n..2n-1 the patched copies.
	n := len(units)
	origDone := make([]atomic.Bool, n)
	// A patched copy is compiled after its proved precompiled head once
	// its original is found in the object cache; a build that finds the
	// original there and no head, headAfter rebuilds of the object after
	// the first, makes one beside the patched compile.
	// The head is found with the original's cache entry, by the original's
	// job; a patched compile waits for it only where a head of its source
	// was proved before (headHint), and otherwise starts at once.
	heads := make([]*pchHead, n)
	srcs := make([]headSource, n) // patched "": no head is made or used
	waitHead := make([]bool, n)
	origReady := make([]chan struct{}, n)
	for i, u := range units {
		origReady[i] = make(chan struct{})
		if t.Exec == nil && !headers && t.Jobs >= 2 && !t.NoHeads {
			orig, err := os.ReadFile(filepath.Join(t.Dir, u.Source))
			patched, perr := os.ReadFile(filepath.Join(overlay, u.Source))
			if err == nil && perr == nil {
				head, lines := sourceHead(string(orig))
				srcs[i] = headSource{head: head, lines: lines, patched: string(patched)}
				waitHead[i] = t.headHint(u.Object, head, srcs[i].patched)
			}
		}
	}
	var making sync.WaitGroup
	var idle sync.Once
	left := atomic.Int64{}
	left.Store(int64(2 * n))
	freed := func() {
		if left.Load() < int64(t.Jobs) && opts.Idle != nil {
			idle.Do(opts.Idle)
		}
	}
	freed()
	err = parallel(ctx, 2*n, t.Jobs, func(j int) error {
		defer func() {
			left.Add(-1)
			freed()
		}()
		u := &units[j%n]
		if j < n {
			defer origDone[j].Store(true)
			obj, crcs, hit, err := t.Original(ctx, u.Object)
			if err != nil {
				close(origReady[j])
				return err
			}
			u.OrigCRCs, u.OrigCached = crcs, hit
			// The entry is the cached object's directory.
			entry := filepath.Dir(obj)
			if hit && srcs[j].patched != "" {
				heads[j] = planHead(entry, srcs[j])
			}
			close(origReady[j])
			// Only a rebuild that could make the head is counted.
			if h := heads[j]; h != nil && !h.proved && !h.failed && rebuilds(entry) >= headAfter {
				making.Go(func() {
					if err := t.makeHead(ctx, h, cmds[j], u.Object, u.Source, opts.Include, patchedFlags(overlay)); err == nil {
						h.made = true
					} else if ctx.Err() == nil && os.MkdirAll(h.dir, 0o755) == nil {
						t.failHead(h, "precompiling it failed: "+err.Error())
					}
				})
			}
			return copyFile(obj, u.Orig)
		}
		copyPath := filepath.Join(overlay, u.Source)
		if waitHead[j%n] {
			select {
			case <-origReady[j%n]:
			case <-ctx.Done():
				// The original's job may not have started.
				return ctx.Err()
			}
			// A compile with the head that fails (gcc finds it
			// unusable) leaves the plain compile to do.
			if h := heads[j%n]; h != nil && h.proved && !h.failed {
				u.PatchedHead = t.compileHead(ctx, h, cmds[j%n], u.Object, u.Source, copyPath, u.Patched, opts.Include, patchedFlags(overlay)) == nil
				if u.PatchedHead {
					// Used last: kept longest (pruneHeads).
					now := time.Now()
					os.Chtimes(h.dir, now, now)
				}
			}
		}
		if u.PatchedHead {
			_, _, _, ksrc, err := compileFlags(cmds[j%n], u.Object, u.Source)
			if err != nil {
				return err
			}
			// The copy reads as compileCopy leaves it (the CRCs are
			// computed from it).
			if err := prependLine(copyPath, ksrc); err != nil {
				return err
			}
		} else if err := t.compileCopy(ctx, cmds[j%n], u.Object, u.Source, copyPath, u.Patched, inc, opts.Include, patchedFlags(overlay)); err != nil {
			return compileError("patched", u.Object, err)
		}
		if !origDone[j%n].Load() {
			// The original still compiles: the files it reads, as
			// the copy's compile read them, are hashed meanwhile.
			t.prehashDeps(u.Patched+".d", work, opts.Include)
		}
		var err error
		u.PatchedCRCs, err = t.crcs(ctx, cmds[j%n], u.Object, u.Source, copyPath, inc, opts.Include, u.Patched)
		return err
	})
	making.Wait()
	if err != nil {
		return nil, err
	}
	for i, h := range heads {
		if h != nil && h.made {
			// Not proved, the head is not used; the build goes on
			// without it either way.
			_ = t.proveHead(ctx, h, cmds[i], units[i].Object, units[i].Source, filepath.Join(overlay, units[i].Source), units[i].Patched, opts.Include, patchedFlags(overlay))
		}
	}
	for _, u := range units {
		if err := writeSymvers(u.Orig+".symvers", u.OrigCRCs); err != nil {
			return nil, err
		}
	}
	return units, nil
}

// prehashDeps starts hashing (prehash) the files a compile's dependency
// list dep names, but those under kelp's own directories (the patched
// copies, the include directory).
func (t *Tree) prehashDeps(dep string, own ...string) {
	deps, err := readDeps(dep)
	if err != nil {
		return // the original's compile reads its own list
	}
	tree := deps[:0]
	for _, d := range deps {
		if !slices.ContainsFunc(own, func(dir string) bool { return dir != "" && strings.HasPrefix(t.abs(d), dir+"/") }) {
			tree = append(tree, d)
		}
	}
	go t.prehash(tree)
}

// writeSymvers writes crcs as genksyms' "#SYMVER name 0xcrc" lines (no
// file when there are none), as ReadSymvers reads them.
func writeSymvers(p string, crcs map[string]uint32) error {
	if len(crcs) == 0 {
		return nil
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(crcs)) {
		fmt.Fprintf(&b, "#SYMVER %s 0x%08x\n", name, crcs[name])
	}
	return os.WriteFile(p, []byte(b.String()), 0o644)
}

// Command returns kbuild's command for obj, as kbuild records it in
// .<obj>.cmd when it builds obj with ObjectFlags: gcc, then objtool when
// kbuild runs it for that object. obj is the cleaned path; the command
// is the one of the Makefile that builds it, under that Makefile's name
// for it (kbuildName).
func (t *Tree) Command(obj string) (string, error) {
	t.cmdMu.Lock()
	cmd, ok := t.cmds[obj]
	t.cmdMu.Unlock()
	if ok {
		return cmd, nil
	}
	ctx := context.Background()
	raw, err := t.kbuildName(ctx, obj)
	if err != nil {
		return "", err
	}
	cmd, err = t.kbuildCommand(ctx, raw)
	if err != nil {
		return "", err
	}
	t.cmdMu.Lock()
	if t.cmds == nil {
		t.cmds = map[string]string{}
	}
	t.cmds[obj] = cmd
	t.cmdMu.Unlock()
	return cmd, nil
}

var modNameRE = regexp.MustCompile(`-DKBUILD_MODNAME='"([^"]*)"'`)

// OwnerOf reads kbuild's own answer from the command: -DMODULE marks a
// module object, KBUILD_MODNAME names the module.
func OwnerOf(cmd string) string {
	if !strings.Contains(cmd, " -DMODULE ") {
		return Vmlinux
	}
	if m := modNameRE.FindStringSubmatch(cmd); m != nil {
		return m[1]
	}
	return Vmlinux
}

var mmdRE = regexp.MustCompile(`-Wp,-MMD,\S+`)

// compileFlags splits kbuild's command for obj (from src) into the gcc
// flags (without -c -o and the source) and the post-processing (objtool)
// of the object, and returns the names kbuild compiles them under: obj
// and src cleaned, or as the Makefile that builds them names them
// (drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o).
func compileFlags(cmd, obj, src string) (flags, post, kobj, ksrc string, err error) {
	gcc, rest, _ := strings.Cut(cmd, "; ")
	gcc = strings.TrimRight(gcc, " ")
	i := strings.LastIndex(gcc, " -c -o ")
	var args []string
	if i >= 0 {
		args = strings.Fields(gcc[i+len(" -c -o "):])
	}
	if len(args) != 2 || path.Clean(args[0]) != obj || path.Clean(args[1]) != src {
		return "", "", "", "", fmt.Errorf("kbuild command for %s does not end in %q", obj, " -c -o "+obj+" "+src)
	}
	kobj, ksrc = args[0], args[1]
	flags = gcc[:i]
	if rest != "" {
		post = strings.TrimRight(rest, " ")
		if !strings.HasSuffix(post, " "+kobj) {
			return "", "", "", "", fmt.Errorf("kbuild post-processing for %s not understood: %q", obj, post)
		}
		post = strings.TrimSuffix(post, kobj)
	}
	return flags, post, kobj, ksrc, nil
}

// overlayIncludes puts overlay's copy of every include directory of flags
// before the tree's, so patched headers win. (A patched compile maps the
// overlay's paths in __FILE__ back to the tree's: patchedFlags.)
func overlayIncludes(flags, overlay string) string {
	if overlay == "" {
		return flags
	}
	re := regexp.MustCompile(` -I\./(\S+)`)
	flags = re.ReplaceAllStringFunc(flags, func(m string) string {
		dir := strings.TrimPrefix(m, " -I./")
		return " -I" + shellQuote(filepath.Join(overlay, dir)) + m
	})
	return flags
}

// patchedFlags end the flags of the compile of a patched object whose
// copies are under overlay:
//   - no debug information (-g0). kelp reads none (the module carries the
//     changed functions' code, data and the sections the kernel reads,
//     never DWARF), and making it is a sixth of the compile. The code is
//     the same: gcc generates the same code with and without -g (its
//     -fcompare-debug checks exactly that), and kelp's diff would show any
//     function where it did not, as a change, against the original
//     object, which is kbuild's own, -g and all;
//   - __FILE__ of a patched file the copy #includes (a .c file that
//     another includes, as kernel/sched/build_policy.c includes rt.c) is
//     its path in the tree, as in the original object, not the copy's
//     path: every WARN and BUG of it would otherwise be a change;
//   - the assembly piped to the assembler (viaPipe).
func patchedFlags(overlay string) string {
	return " -g0 -fmacro-prefix-map=" + shellQuote(overlay+"/") + "=" + viaPipe
}

// viaPipe has gcc hand its assembly to the assembler through a pipe
// instead of a temporary file, which the assembler would read back: the
// object is the same, and the compile takes a few milliseconds less (20
// in half a second for fs/proc/array.c with kbuild's -g).
const viaPipe = " -pipe"

// compileCopy compiles copyPath (a copy of the tree's src) into outObj
// with kbuild's command for obj, and then extra flags, run in the tree. A
// #line directive keeps __FILE__ what it is in the tree, -iquote finds the
// headers next to the original, and objtool (when the command runs it)
// processes the copy.
func (t *Tree) compileCopy(ctx context.Context, cmd, obj, src, copyPath, outObj, overlay, include, extra string) error {
	flags, post, _, ksrc, err := compileFlags(cmd, obj, src)
	if err != nil {
		return err
	}
	if err := prependLine(copyPath, ksrc); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(outObj), 0o755); err != nil {
		return err
	}
	flags = mmdRE.ReplaceAllString(flags, "-Wp,-MMD,"+shellQuote(outObj+".d"))
	flags = overlayIncludes(flags, overlay)
	if include != "" {
		flags += " -I" + shellQuote(include)
	}
	script := flags + " -iquote " + shellQuote(ksrcDir(ksrc)) + extra + " -c -o " + shellQuote(outObj) + " " + shellQuote(copyPath)
	if post != "" {
		script += " && " + post + shellQuote(outObj)
	}
	return run(ctx, t.Exec, t.Dir, "sh", "-c", script)
}

// ksrcDir is the directory of a source named as kbuild names it, kept
// uncleaned (path.Dir cleans): "a/b/../c/x.c" is in "a/b/../c".
func ksrcDir(ksrc string) string {
	if i := strings.LastIndexByte(ksrc, '/'); i >= 0 {
		return ksrc[:i]
	}
	return "."
}

// prependLine starts the copy at p with a #line directive naming the
// tree's src, so __FILE__ and diagnostics are what they are in the tree.
func prependLine(p, src string) error {
	body, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if strings.HasPrefix(string(body), "#line 1 ") {
		return nil
	}
	return os.WriteFile(p, append([]byte(fmt.Sprintf("#line 1 %q\n", src)), body...), 0o644)
}

// crcs runs genksyms over srcPath (preprocessed as kbuild would for obj)
// when it exports symbols, and returns the CRCs; the .symvers record
// (and the preprocessor's dependency list, .symvers.d) is written next to
// outObj.
func (t *Tree) crcs(ctx context.Context, cmd, obj, src, srcPath, overlay, include, outObj string) (map[string]uint32, error) {
	body, err := os.ReadFile(srcPath)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(body), "EXPORT_SYMBOL") {
		return map[string]uint32{}, nil
	}
	flags, _, _, ksrc, err := compileFlags(cmd, obj, src)
	if err != nil {
		return nil, err
	}
	flags = mmdRE.ReplaceAllString(flags, "")
	flags = overlayIncludes(flags, overlay)
	if include != "" {
		flags += " -I" + shellQuote(include)
	}
	out := outObj + ".symvers"
	// The files the preprocessor read (with __GENKSYMS__, headers may
	// include others) are listed in out.d.
	flags += " -Wp,-MMD," + shellQuote(out+".d")
	script := flags + " -iquote " + shellQuote(ksrcDir(ksrc)) + " -E -D__GENKSYMS__ " + shellQuote(srcPath) +
		" | scripts/genksyms/genksyms -r /dev/null > " + shellQuote(out)
	if err := run(ctx, t.Exec, t.Dir, "sh", "-c", script); err != nil {
		return nil, fmt.Errorf("genksyms %s: %w", obj, err)
	}
	return ReadSymvers(out)
}

// ReadSymvers reads genksyms' "#SYMVER name 0xcrc" lines; a missing
// file is an empty set.
func ReadSymvers(p string) (map[string]uint32, error) {
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return map[string]uint32{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]uint32{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "#SYMVER" {
			continue
		}
		crc, err := strconv.ParseUint(f[2], 0, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", p, line, err)
		}
		out[f[1]] = uint32(crc)
	}
	return out, nil
}

// CompileProbe compiles C source src with the flags of the tree object
// like (e.g. "kernel/fork.o"), without objtool, into dir, and returns the
// object's path. It is how facts only the target tree knows (such as the
// sizes of special-section entries) are learned.
func (t *Tree) CompileProbe(ctx context.Context, name string, src []byte, like, dir string) (string, error) {
	cmd, err := t.Command(like)
	if err != nil {
		return "", err
	}
	gcc, _, _ := strings.Cut(cmd, "; ")
	obj := path.Join(path.Dir(like), name+".o")
	c := filepath.Join(dir, strings.TrimSuffix(obj, ".o")+".c")
	if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(c, src, 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, obj)
	if err := t.compileCopy(ctx, gcc, like, strings.TrimSuffix(like, ".o")+".c", c, out, "", "", ""); err != nil {
		return "", err
	}
	return out, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// parallel runs f(0..n-1) on at most jobs goroutines and returns the
// first error (by index).
func parallel(ctx context.Context, n, jobs int, f func(i int) error) error {
	if jobs < 1 {
		jobs = 1
	}
	errs := make([]error, n)
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			errs[i] = f(i)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
