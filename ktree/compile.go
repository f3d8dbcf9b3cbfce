package ktree

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
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
}

// CompilePatch compiles the objects the patch reaches, original and
// patched, into work. The tree's sources are never modified: the
// original objects are kbuild's own (built in the tree the first time and
// copied out), the patched ones are compiled from copies in work/b (with
// the patched headers found before the tree's).
func (t *Tree) CompilePatch(ctx context.Context, p *Patch, objs []Object, work string, opts CompileOptions) ([]Unit, error) {
	if len(objs) == 0 {
		return nil, fmt.Errorf("patch changes no object")
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	if err := t.BuildObjects(ctx, names, opts.Step); err != nil {
		return nil, err
	}
	overlay := filepath.Join(work, "b")
	headers := false
	for _, f := range p.Files {
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
	for i, o := range objs {
		cmd, err := t.Command(o.Name)
		if err != nil {
			return nil, err
		}
		units[i] = Unit{Object: o.Name, Source: o.Source, Owner: OwnerOf(cmd),
			Orig:    filepath.Join(work, "a", o.Name),
			Patched: filepath.Join(overlay, o.Name)}
		if err := copyFile(filepath.Join(t.Dir, o.Name), units[i].Orig); err != nil {
			return nil, err
		}
		if p.File(o.Source) == nil {
			if err := copyFile(filepath.Join(t.Dir, o.Source), filepath.Join(overlay, o.Source)); err != nil {
				return nil, err
			}
		}
	}
	if opts.Step != nil {
		opts.Step(fmt.Sprintf("compiling %d patched object(s)", len(units)))
	}
	err := parallel(ctx, len(units), t.Jobs, func(i int) error {
		u := &units[i]
		cmd, _ := t.Command(u.Object)
		inc := ""
		if headers {
			inc = overlay
		}
		var err error
		// genksyms reads the copy the way it reads the patched one, so
		// the two CRCs differ only by the patch.
		origCopy := filepath.Join(filepath.Dir(u.Orig), path.Base(u.Source))
		if err := copyFile(filepath.Join(t.Dir, u.Source), origCopy); err != nil {
			return err
		}
		if err := prependLine(origCopy, u.Source); err != nil {
			return err
		}
		if u.OrigCRCs, err = t.crcs(ctx, cmd, u.Object, u.Source, origCopy, "", "", u.Orig); err != nil {
			return err
		}
		copyPath := filepath.Join(overlay, u.Source)
		if err := t.compileCopy(ctx, cmd, u.Object, u.Source, copyPath, u.Patched, inc, opts.Include); err != nil {
			return compileError("patched", u.Object, err)
		}
		if u.PatchedCRCs, err = t.crcs(ctx, cmd, u.Object, u.Source, copyPath, inc, opts.Include, u.Patched); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return units, nil
}

// BuildObjects has kbuild build the named objects in the tree with
// ObjectFlags, unless they are there already, built with them. The tree
// is locked meanwhile.
func (t *Tree) BuildObjects(ctx context.Context, names []string, step func(string)) error {
	missing := t.missing(names)
	if len(missing) == 0 {
		return nil
	}
	unlock, err := lockFile(t.Dir + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if missing = t.missing(names); len(missing) == 0 {
		return nil
	}
	if step != nil {
		step(fmt.Sprintf("compiling %d original object(s) in the tree", len(missing)))
	}
	args := []string{"-s", "-j" + strconv.Itoa(t.Jobs), "KCFLAGS=" + ObjectFlags}
	if err := run(ctx, t.Exec, t.Dir, "make", append(args, missing...)...); err != nil {
		return compileError("original", strings.Join(missing, " "), err)
	}
	for _, n := range missing {
		if _, err := t.Command(n); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) missing(names []string) []string {
	var out []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(t.Dir, n)); err != nil {
			out = append(out, n)
		} else if _, err := t.Command(n); err != nil {
			out = append(out, n)
		}
	}
	return out
}

// Command returns the command kbuild recorded for obj, which must carry
// ObjectFlags.
func (t *Tree) Command(obj string) (string, error) {
	cmdFile := filepath.Join(t.Dir, filepath.FromSlash(path.Dir(obj)), "."+path.Base(obj)+".cmd")
	data, err := os.ReadFile(cmdFile)
	if err != nil {
		return "", fmt.Errorf("kernel object %s: kbuild command record: %w", obj, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	// Linux 6.3 renamed the record "savedcmd_".
	cmd, ok := strings.CutPrefix(line, "cmd_"+obj+" := ")
	if !ok {
		cmd, ok = strings.CutPrefix(line, "savedcmd_"+obj+" := ")
	}
	if !ok {
		return "", fmt.Errorf("kernel object %s: unexpected command record %q", obj, tail(line, 1))
	}
	if !strings.Contains(cmd, ObjectFlags) {
		return "", fmt.Errorf("kernel object %s was built without %q", obj, ObjectFlags)
	}
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

// compileFlags splits kbuild's command for obj into the gcc flags (without
// -c -o and the source) and the post-processing (objtool) of obj.
func compileFlags(cmd, obj, src string) (flags, post string, err error) {
	gcc, rest, _ := strings.Cut(cmd, "; ")
	tailArgs := " -c -o " + obj + " " + src
	gcc = strings.TrimRight(gcc, " ")
	if !strings.HasSuffix(gcc, tailArgs) {
		return "", "", fmt.Errorf("kbuild command for %s does not end in %q", obj, tailArgs)
	}
	flags = strings.TrimSuffix(gcc, tailArgs)
	if rest != "" {
		post = strings.TrimRight(rest, " ")
		if !strings.HasSuffix(post, " "+obj) {
			return "", "", fmt.Errorf("kbuild post-processing for %s not understood: %q", obj, post)
		}
		post = strings.TrimSuffix(post, obj)
	}
	return flags, post, nil
}

// overlayIncludes puts overlay's copy of every include directory of flags
// before the tree's, so patched headers win.
func overlayIncludes(flags, overlay string) string {
	if overlay == "" {
		return flags
	}
	re := regexp.MustCompile(` -I\./(\S+)`)
	flags = re.ReplaceAllStringFunc(flags, func(m string) string {
		dir := strings.TrimPrefix(m, " -I./")
		return " -I" + shellQuote(filepath.Join(overlay, dir)) + m
	})
	return flags + " -fmacro-prefix-map=" + shellQuote(overlay+"/") + "="
}

// compileCopy compiles copyPath (a copy of the tree's src) into outObj
// with kbuild's command for obj, run in the tree. A #line directive keeps
// __FILE__ what it is in the tree, -iquote finds the headers next to the
// original, and objtool (when the command runs it) processes the copy.
func (t *Tree) compileCopy(ctx context.Context, cmd, obj, src, copyPath, outObj, overlay, include string) error {
	if err := prependLine(copyPath, src); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(outObj), 0o755); err != nil {
		return err
	}
	flags, post, err := compileFlags(cmd, obj, src)
	if err != nil {
		return err
	}
	flags = mmdRE.ReplaceAllString(flags, "-Wp,-MMD,"+shellQuote(outObj+".d"))
	flags = overlayIncludes(flags, overlay)
	if include != "" {
		flags += " -I" + shellQuote(include)
	}
	script := flags + " -iquote " + path.Dir(src) + " -c -o " + shellQuote(outObj) + " " + shellQuote(copyPath)
	if post != "" {
		script += " && " + post + shellQuote(outObj)
	}
	return run(ctx, t.Exec, t.Dir, "sh", "-c", script)
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
// when it exports symbols, and returns the CRCs; the .symvers record is
// written next to outObj.
func (t *Tree) crcs(ctx context.Context, cmd, obj, src, srcPath, overlay, include, outObj string) (map[string]uint32, error) {
	body, err := os.ReadFile(srcPath)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(body), "EXPORT_SYMBOL") {
		return map[string]uint32{}, nil
	}
	flags, _, err := compileFlags(cmd, obj, src)
	if err != nil {
		return nil, err
	}
	flags = mmdRE.ReplaceAllString(flags, "")
	flags = overlayIncludes(flags, overlay)
	if include != "" {
		flags += " -I" + shellQuote(include)
	}
	out := outObj + ".symvers"
	script := flags + " -iquote " + path.Dir(src) + " -E -D__GENKSYMS__ " + shellQuote(srcPath) +
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
	if err := t.BuildObjects(ctx, []string{like}, nil); err != nil {
		return "", err
	}
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
	if err := t.compileCopy(ctx, gcc, like, strings.TrimSuffix(like, ".o")+".c", c, out, "", ""); err != nil {
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
