package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// PatchedUnit is one translation unit of the test kernel compiled twice,
// before and after a patch, exactly as kbuild compiles it (the command
// recorded in the tree's .<name>.o.cmd, plus ObjectFlags, plus objtool)
// except that the source is a copy outside the tree.
type PatchedUnit struct {
	Object  string // path of the object in the tree, e.g. "fs/proc/loadavg.o"
	Source  string // the patched source file, e.g. "fs/proc/loadavg.c"
	Orig    string // the object compiled from the unpatched copy
	Patched string // the object compiled from the patched copy
	Module  bool   // compiled as part of a module (-DMODULE)
	ModName string // KBUILD_MODNAME
	// OrigCRCs and PatchedCRCs are the MODVERSIONS CRCs genksyms computes
	// for the symbols the unit exports (empty when it exports none).
	OrigCRCs, PatchedCRCs map[string]uint32
}

// CompilePatch applies patch (a unified diff against the kernel tree,
// paths prefixed a/ and b/) to copies of the .c files it touches and
// compiles each of them twice, unpatched and patched, into the test cache.
// The shared source tree is never modified. Only .c files may be touched;
// each is compiled as the object of the same name.
func (k *Kernel) CompilePatch(ctx context.Context, patch []byte) ([]PatchedUnit, error) {
	files, err := patchedFiles(patch)
	if err != nil {
		return nil, err
	}
	objs := make([]string, len(files))
	for i, f := range files {
		objs[i] = strings.TrimSuffix(f, ".c") + ".o"
	}
	// Compiling the objects in the tree once leaves kbuild's command
	// records (.<name>.o.cmd) there for us to reuse.
	if _, err := k.Objects(ctx, objs); err != nil {
		return nil, err
	}
	tree, err := k.SourceTree(ctx)
	if err != nil {
		return nil, err
	}
	cmds := make([]string, len(files))
	key := []string{"patched-v2", tree, string(patch)}
	for i, f := range files {
		if cmds[i], err = kbuildCommand(tree, objs[i]); err != nil {
			return nil, err
		}
		src, err := os.ReadFile(filepath.Join(tree, f))
		if err != nil {
			return nil, err
		}
		key = append(key, cmds[i], string(src))
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "patched", Digest(key...))
	_, err = Cached(dir, func(dir string) error {
		for _, side := range []string{"a", "b"} {
			for _, f := range files {
				if err := copyInto(filepath.Join(tree, f), filepath.Join(dir, side, f)); err != nil {
					return err
				}
			}
		}
		for _, f := range files {
			p := filepath.Join(dir, "b", f)
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out, err := applyPatch(string(src), string(patch), f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
				return err
			}
		}
		for i, f := range files {
			for _, side := range []string{"a", "b"} {
				d := filepath.Join(dir, side)
				if err := compileCopy(ctx, tree, cmds[i], objs[i], f, filepath.Join(d, f), filepath.Join(d, objs[i])); err != nil {
					return fmt.Errorf("compile %s (%s): %w", objs[i], side, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]PatchedUnit, len(files))
	for i, f := range files {
		u := PatchedUnit{
			Object:  objs[i],
			Source:  f,
			Orig:    filepath.Join(dir, "a", objs[i]),
			Patched: filepath.Join(dir, "b", objs[i]),
			Module:  strings.Contains(cmds[i], " -DMODULE "),
			ModName: modName(cmds[i]),
		}
		if u.OrigCRCs, err = readSymvers(u.Orig + ".symvers"); err != nil {
			return nil, err
		}
		if u.PatchedCRCs, err = readSymvers(u.Patched + ".symvers"); err != nil {
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
	if _, err := k.Objects(ctx, []string{like}); err != nil {
		return "", err
	}
	tree, err := k.SourceTree(ctx)
	if err != nil {
		return "", err
	}
	cmd, err := kbuildCommand(tree, like)
	if err != nil {
		return "", err
	}
	gcc, _, _ := strings.Cut(cmd, "; ")
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "probes", name+"-"+Digest("probe-v1", tree, gcc, string(src)))
	obj := path.Join(path.Dir(like), name+".o")
	_, err = Cached(dir, func(dir string) error {
		c := filepath.Join(dir, strings.TrimSuffix(obj, ".o")+".c")
		if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(c, src, 0o644); err != nil {
			return err
		}
		return compileCopy(ctx, tree, gcc, like, strings.TrimSuffix(like, ".o")+".c", c, filepath.Join(dir, obj))
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, obj), nil
}

// patchedFiles lists the files a unified diff modifies, sorted.
func patchedFiles(patch []byte) ([]string, error) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(patch))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "+++ ") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "+++ "), "\t")
		name = strings.TrimSpace(name)
		if !strings.HasPrefix(name, "b/") {
			return nil, fmt.Errorf("patch: %q: want paths prefixed b/", name)
		}
		name = strings.TrimPrefix(name, "b/")
		if path.Clean(name) != name || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return nil, fmt.Errorf("patch: %q is not a clean path in the tree", name)
		}
		if !strings.HasSuffix(name, ".c") {
			return nil, fmt.Errorf("patch: %s: only .c files can be compiled on their own", name)
		}
		seen[name] = true
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("patch: no files")
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// kbuildCommand returns the command kbuild recorded for obj in tree.
func kbuildCommand(tree, obj string) (string, error) {
	cmdFile := filepath.Join(tree, filepath.FromSlash(path.Dir(obj)), "."+path.Base(obj)+".cmd")
	data, err := os.ReadFile(cmdFile)
	if err != nil {
		return "", fmt.Errorf("kernel object %s: kbuild command record: %w", obj, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	prefix := "cmd_" + obj + " := "
	if !strings.HasPrefix(line, prefix) {
		return "", fmt.Errorf("kernel object %s: unexpected command record %q", obj, tail(line, 1))
	}
	cmd := strings.TrimPrefix(line, prefix)
	if !strings.Contains(cmd, ObjectFlags) {
		return "", fmt.Errorf("kernel object %s was built without %q", obj, ObjectFlags)
	}
	return cmd, nil
}

var modNameRE = regexp.MustCompile(`-DKBUILD_MODNAME='"([^"]*)"'`)

func modName(cmd string) string {
	if m := modNameRE.FindStringSubmatch(cmd); m != nil {
		return m[1]
	}
	return ""
}

// compileCopy compiles copyPath (a copy of the tree's src, or another
// file standing in for it) into outObj with kbuild's command cmd for obj,
// run in the tree. A #line directive keeps __FILE__ what it is in the
// tree, -iquote finds the headers next to the original, and objtool (when
// the command runs it) processes the copy. When the unit exports symbols,
// their genksyms CRCs go to outObj.symvers.
func compileCopy(ctx context.Context, tree, cmd, obj, src, copyPath, outObj string) error {
	body, err := os.ReadFile(copyPath)
	if err != nil {
		return err
	}
	body = append([]byte(fmt.Sprintf("#line 1 %q\n", src)), body...)
	if err := os.WriteFile(copyPath, body, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(outObj), 0o755); err != nil {
		return err
	}
	gcc, rest, _ := strings.Cut(cmd, "; ")
	tail := " -c -o " + obj + " " + src
	gcc = strings.TrimRight(gcc, " ")
	if !strings.HasSuffix(gcc, tail) {
		return fmt.Errorf("kbuild command for %s does not end in %q", obj, tail)
	}
	flags := strings.TrimSuffix(gcc, tail)
	flags = regexp.MustCompile(`-Wp,-MMD,\S+`).ReplaceAllString(flags, "-Wp,-MMD,"+shellQuote(outObj+".d"))
	iquote := " -iquote " + path.Dir(src)
	script := flags + iquote + " -c -o " + shellQuote(outObj) + " " + shellQuote(copyPath)
	if rest != "" {
		objtool := strings.TrimRight(rest, " ")
		if !strings.HasSuffix(objtool, " "+obj) {
			return fmt.Errorf("kbuild post-processing for %s not understood: %q", obj, objtool)
		}
		script += " && " + strings.TrimSuffix(objtool, obj) + shellQuote(outObj)
	}
	if err := run(ctx, tree, "sh", "-c", script); err != nil {
		return err
	}
	if !bytes.Contains(body, []byte("EXPORT_SYMBOL")) {
		return nil
	}
	genksyms := strings.Replace(flags, "-Wp,-MMD,"+shellQuote(outObj+".d"), "", 1) + iquote +
		" -E -D__GENKSYMS__ " + shellQuote(copyPath) + " | scripts/genksyms/genksyms -r /dev/null > " + shellQuote(outObj+".symvers")
	return run(ctx, tree, "sh", "-c", genksyms)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func copyInto(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return copyFile(src, dst)
}

// readSymvers reads genksyms' "#SYMVER name 0xcrc" lines; a missing file
// is an empty set.
func readSymvers(p string) (map[string]uint32, error) {
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
