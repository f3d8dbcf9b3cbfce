package ktree

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// kbuild's command for one object is known without building anything:
// the tree's top-level Makefile is evaluated once (the variables it
// exports to its sub-makes are kept in the tree), and for each object
// scripts/Makefile.build is asked, as a dry run, what it would run for
// that object from the root, exactly as `make <obj>` descends. The
// answer is the line kbuild records in .<obj>.cmd.

// envVersion names the layout of the recorded environment.
const envVersion = "kbuild-env-v2"

// notKbuild are variables of the recording make that belong to that run,
// not to kbuild's configuration.
var notKbuild = map[string]bool{"_": true, "PATH": true, "MAKELEVEL": true, "MFLAGS": true, "MAKEOVERRIDES": true, "OLDPWD": true, "PWD": true, "SHLVL": true}

// kbuildEnv returns the environment kbuild's top-level Makefile passes to
// its sub-makes (with KCFLAGS=ObjectFlags), recorded once per tree.
func (t *Tree) kbuildEnv(ctx context.Context) ([]string, error) {
	t.envOnce.Do(func() { t.env, t.envErr = t.recordEnv(ctx) })
	return t.env, t.envErr
}

func (t *Tree) recordEnv(ctx context.Context) ([]string, error) {
	where := "host"
	if t.Exec != nil {
		where = t.Exec.Dir
	}
	file := filepath.Join(t.Dir, ".kelp-"+Digest(envVersion, ObjectFlags, where))
	data, err := os.ReadFile(file)
	if err != nil {
		unlock, err := lockFile(t.Dir + ".lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
		if data, err = os.ReadFile(file); err != nil {
			if data, err = t.captureEnv(ctx); err != nil {
				return nil, err
			}
			if err := atomicfile.WriteFile(file, data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	kb := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if t.Exec != nil {
		// A build root's commands start from a clean environment.
		return kb, nil
	}
	names := map[string]bool{}
	for _, kv := range kb {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return names[k] || strings.HasPrefix(k, "MAKE")
	})
	return append(env, kb...), nil
}

// captureEnv runs the top-level Makefile with a goal of its own that
// writes the environment its recipes (and so kbuild's sub-makes) get,
// and keeps the variables kbuild set or changed.
func (t *Tree) captureEnv(ctx context.Context) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "kelp-kbuild-env-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "env")
	mk := filepath.Join(tmp, "env.mk")
	rule := "kelp-kbuild-env:\n\t@env -0 > " + shellQuote(out) + "\n"
	if err := os.WriteFile(mk, []byte(rule), 0o644); err != nil {
		return nil, err
	}
	// --no-print-directory: Linux 6.12's Makefile otherwise runs itself
	// again (__sub-make) without the extra makefile.
	if err := run(ctx, t.Exec, t.Dir, "make", "-s", "--no-print-directory", "-f", "Makefile", "-f", mk, "KCFLAGS="+ObjectFlags, "kelp-kbuild-env"); err != nil {
		return nil, fmt.Errorf("read kbuild's configuration: %w", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	// Variables the recording make was given (on the host, this
	// process's environment) are not kbuild's.
	parent := map[string]string{}
	for _, kv := range os.Environ() {
		if t.Exec != nil {
			break
		}
		k, v, _ := strings.Cut(kv, "=")
		parent[k] = v
	}
	var kept bytes.Buffer
	for _, kv := range strings.Split(string(data), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || notKbuild[k] || k == "KBUILD_MODULES" {
			continue
		}
		if pv, ok := parent[k]; ok && pv == v && k != "MAKEFLAGS" {
			continue
		}
		kept.WriteString(kv + "\x00")
	}
	// `make <obj>` builds modules' objects too (kbuild's single-target
	// build sets it).
	kept.WriteString("KBUILD_MODULES=1\x00")
	return kept.Bytes(), nil
}

// makeDryRun runs scripts/Makefile.build from the tree's root with make
// -n -B (as if nothing were built yet), descending as kbuild does, with
// extra targets and options; it returns make's output and errors.
func (t *Tree) makeDryRun(ctx context.Context, targets ...string) (stdout, stderr string, err error) {
	env, err := t.kbuildEnv(ctx)
	if err != nil {
		return "", err.Error(), err
	}
	args := append([]string{"-n", "-B", "-f", "./scripts/Makefile.build", "obj=.", "need-builtin=1", "need-modorder=1"}, targets...)
	var cmd *exec.Cmd
	if t.Exec != nil {
		cmd = t.Exec.Command(ctx, t.Dir, env, "make", args...)
	} else {
		cmd = exec.CommandContext(ctx, "make", args...)
		cmd.Dir, cmd.Env = t.Dir, env
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// dryRun asks scripts/Makefile.build, descending from the root as kbuild
// does for `make obj`, for the command it would record for obj (-B: as if
// nothing were built yet).
func (t *Tree) dryRun(ctx context.Context, obj string) (string, error) {
	stdout, stderr, err := t.makeDryRun(ctx, "./"+obj)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("kernel object %s: kbuild has no way to build it in this configuration: %s", obj, tail(strings.TrimSpace(stderr), 1))
	}
	// obj is kbuild's name, uncleaned (amdgpu's ../display/ objects).
	dir, base := "", obj
	if i := strings.LastIndexByte(obj, '/'); i >= 0 {
		dir, base = obj[:i], obj[i+1:]
	}
	dot := "." + base
	if dir != "" {
		dot = dir + "/" + dot
	}
	marker := "scripts/basic/fixdep " + dot + ".d " + obj + " "
	// A directory's Makefile.build on the way down may compile obj
	// too, by its pattern rule, before descending: as code of its own
	// directory, not knowing obj belongs to a module (no -DMODULE).
	// kbuild's build of the kernel compiles obj in the directory whose
	// Makefile names it (obj's own, or the one before a ../ in its
	// name), the last one the descent reaches: its command is the one.
	if i := strings.Index(dir+"/", "/../"); i >= 0 {
		dir = dir[:i]
	}
	own := "obj=" + path.Clean(dir)
	level, found := "", ""
	for _, line := range strings.Split(stdout, "\n") {
		if i := strings.Index(line, "scripts/Makefile.build obj="); i >= 0 && !strings.Contains(line, marker) {
			level = strings.Fields(line[i+len("scripts/Makefile.build "):])[0]
			continue
		}
		_, rest, ok := strings.Cut(line, marker)
		if !ok {
			continue
		}
		word, after, ok := singleQuoted(rest)
		if !ok || !strings.HasPrefix(strings.TrimSpace(after), "> "+dot+".cmd") {
			return "", fmt.Errorf("kernel object %s: kbuild's command record not understood: %q", obj, tail(line, 1))
		}
		if found == "" || level == own {
			found = word
		}
	}
	if found == "" {
		return "", fmt.Errorf("kernel object %s: kbuild does not compile it from C in this configuration", obj)
	}
	return found, nil
}

// singleQuoted reads one shell word made of '...' parts and \' escapes
// at the start of s, and returns it and the rest of s.
func singleQuoted(s string) (word, rest string, ok bool) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		switch {
		case s[i] == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", "", false
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case s[i] == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i += 2
		default:
			return b.String(), s[i:], i > 0
		}
	}
	return b.String(), "", i > 0
}

// commandKey is the digest of everything kbuild's command for obj is
// derived from: its environment and the makefiles read on the way from
// the root to obj's directory.
func (t *Tree) commandKey(ctx context.Context, obj string) (string, error) {
	return t.commandKeyWith(ctx, obj, &keyDigests{})
}

// keyDigests memoises, for the command keys of many objects, the digest
// of kbuild's environment and top-level makefiles and of each directory
// on the way down, so that a whole tree's objects hash each makefile
// once, not once per object.
type keyDigests struct {
	top  []byte            // environment and top-level makefiles
	dirs map[string][]byte // the way down as obj's name spells it ("/a/b/../c") -> digest
}

// hashFile writes f's name and content (or its absence) to h.
func hashFile(h io.Writer, dir, f string) error {
	data, err := os.ReadFile(filepath.Join(dir, f))
	if os.IsNotExist(err) {
		io.WriteString(h, f+"\x00-\x00")
		return nil
	}
	if err != nil {
		return err
	}
	io.WriteString(h, f+"\x00")
	h.Write(data)
	h.Write([]byte{0})
	return nil
}

// commandKeyWith is commandKey with the digests of k.
func (t *Tree) commandKeyWith(ctx context.Context, obj string, k *keyDigests) (string, error) {
	if k.top == nil {
		env, err := t.kbuildEnv(ctx)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		io.WriteString(h, "command-v3\x00")
		for _, kv := range env {
			if k, _, _ := strings.Cut(kv, "="); k == "MAKEFLAGS" || strings.HasPrefix(k, "KBUILD") || strings.HasPrefix(k, "CC") || k == "LINUXINCLUDE" {
				io.WriteString(h, kv+"\x00")
			}
		}
		for _, f := range []string{"include/config/auto.conf", "scripts/Makefile.build", "scripts/Makefile.lib",
			"scripts/Kbuild.include", "scripts/Makefile.compiler", "Kbuild", "Makefile"} {
			if err := hashFile(h, t.Dir, f); err != nil {
				return "", err
			}
		}
		k.top, k.dirs = h.Sum(nil), map[string][]byte{}
	}
	// Each directory on the way, as obj's name spells it (a ../ in it
	// goes back up, and its makefiles are read again), chained to the
	// digest of the way before it.
	sum, way, dir := k.top, "", ""
	for _, part := range strings.Split(path.Dir(obj), "/") {
		way += "/" + part
		dir = path.Join(dir, part)
		if d, ok := k.dirs[way]; ok {
			sum = d
			continue
		}
		h := sha256.New()
		h.Write(sum)
		for _, f := range []string{dir + "/Kbuild", dir + "/Makefile"} {
			if err := hashFile(h, t.Dir, f); err != nil {
				return "", err
			}
		}
		sum = h.Sum(nil)
		k.dirs[way] = sum
	}
	h := sha256.New()
	io.WriteString(h, obj+"\x00")
	h.Write(sum)
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// kbuildCommand returns kbuild's command for obj: the dry run's answer,
// kept in the tree under the digest of what it depends on.
func (t *Tree) kbuildCommand(ctx context.Context, obj string) (string, error) {
	key, err := t.commandKey(ctx, obj)
	if err != nil {
		return "", err
	}
	file := filepath.Join(t.Dir, ".kelp-commands", key)
	if data, err := os.ReadFile(file); err == nil {
		return string(data), nil
	}
	// The whole tree's dry run has it, unless obj is not an object the
	// config builds, the run named two commands for it, or what the
	// command derives from changed since (a Makefile of a source
	// directory edited): then obj's own dry run.
	cmd, ok := t.recordedCommand(ctx, obj, key)
	if !ok {
		if cmd, err = t.dryRun(ctx, obj); err != nil {
			return "", err
		}
	}
	if !strings.Contains(cmd, ObjectFlags) {
		return "", fmt.Errorf("kernel object %s: kbuild's command lacks %q", obj, ObjectFlags)
	}
	return cmd, atomicfile.WriteFile(file, []byte(cmd), 0o644)
}
