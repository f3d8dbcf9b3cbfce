package ktree

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// objectsVersion names the layout of the recorded configured objects
// and their commands.
const objectsVersion = "kbuild-objects-v5"

// ConfiguredObjects returns every object kbuild compiles from C or
// assembly for the tree's config, into vmlinux or a module: a dry run of
// the whole tree from its root (scripts/Makefile.build obj=., descending
// as kbuild does for `make`), read from the fixdep command kbuild records
// for each object. A single-object build (`make dir/file.o`, what kelp
// compiles) builds any object, configured or not; this says which ones
// the target kernel was built from.
func (t *Tree) ConfiguredObjects(ctx context.Context) (map[string]bool, error) {
	names, err := t.kbuildObjects(ctx)
	if err != nil {
		return nil, err
	}
	objs := map[string]bool{}
	for line := range strings.Lines(names.text) {
		if raw := strings.TrimSpace(line); raw != "" {
			objs[path.Clean(raw)] = true
		}
	}
	return objs, nil
}

// Configured tells whether the tree's config builds obj (a cleaned path,
// e.g. "drivers/gpu/drm/amd/display/dc/core/dc.o").
func (t *Tree) Configured(ctx context.Context, obj string) (bool, error) {
	names, err := t.kbuildObjects(ctx)
	if err != nil {
		return false, err
	}
	_, ok := names.raw(obj)
	return ok, nil
}

// kbuildName is the name kbuild compiles obj under: the path relative to
// the directory whose Makefile builds it. amdgpu's Makefile builds
// drivers/gpu/drm/amd/display/dc/core/dc.o as
// drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o, with its own flags
// and module name, and arch/x86/kvm's Makefile builds virt/kvm/kvm_main.o
// into kvm.ko as arch/x86/kvm/../../../virt/kvm/kvm_main.o. An object
// the config does not build keeps its name.
func (t *Tree) kbuildName(ctx context.Context, obj string) (string, error) {
	names, err := t.kbuildObjects(ctx)
	if err != nil {
		return "", err
	}
	if raw, ok := names.raw(obj); ok {
		if raw == "" {
			return "", fmt.Errorf("kernel object %s: kbuild builds it under two names in this configuration", obj)
		}
		return raw, nil
	}
	return obj, nil
}

// objectNames are the names kbuild compiles the config's objects under,
// one per line of text. A build reads a few of its some 13,000 lines, so
// they are looked up in the text: only the few hundred names that are
// not clean paths (amdgpu's "../display/...") are indexed, by the path
// they clean to.
type objectNames struct {
	text    string            // "\n" + the record: one name per line
	unclean map[string]string // cleaned path → name; "" for two names
}

func newObjectNames(record []byte) (*objectNames, error) {
	// The text is made in one copy of the record (some 450 kB).
	var text strings.Builder
	text.Grow(len(record) + 2)
	text.WriteByte('\n')
	text.Write(record)
	if !bytes.HasSuffix(record, []byte{'\n'}) {
		text.WriteByte('\n')
	}
	n := &objectNames{text: text.String(), unclean: map[string]string{}}
	count := 0
	for line := range strings.Lines(n.text[1:]) {
		raw := strings.TrimSpace(line)
		if raw == "" {
			continue
		}
		count++
		if !maybeUnclean(raw) {
			continue
		}
		clean := path.Clean(raw)
		if clean == raw {
			continue
		}
		if prev, ok := n.unclean[clean]; ok && prev != raw {
			// Built under two names: kelp cannot say which command
			// is the one (kbuildName refuses it).
			raw = ""
		}
		n.unclean[clean] = raw
	}
	if count == 0 {
		return nil, errors.New("names no object")
	}
	return n, nil
}

// maybeUnclean tells whether path.Clean may change p: only a path with
// "//", "/.", a leading "." or a trailing "/" can clean to another.
func maybeUnclean(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/.") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, "/")
}

// raw returns the name kbuild builds the object at the cleaned path obj
// under ("" when two names clean to obj), and whether it builds it.
func (n *objectNames) raw(obj string) (string, bool) {
	if maybeUnclean(obj) && path.Clean(obj) != obj {
		return "", false
	}
	name, unclean := n.unclean[obj]
	listed := obj != "" && strings.Contains(n.text, "\n"+obj+"\n")
	switch {
	case unclean && listed:
		return "", true
	case unclean:
		return name, true
	case listed:
		return obj, true
	}
	return "", false
}

// kbuildObjects returns the names kbuild compiles the config's objects
// under (objectNames.raw finds an object's by its cleaned path), from
// kbuild's dry run of the whole tree, recorded once per tree and config.
func (t *Tree) kbuildObjects(ctx context.Context) (*objectNames, error) {
	t.objsOnce.Do(func() { t.objs, t.objsErr = t.recordObjects(ctx) })
	return t.objs, t.objsErr
}

func (t *Tree) recordObjects(ctx context.Context) (*objectNames, error) {
	cfg, err := os.ReadFile(filepath.Join(t.Dir, ".config"))
	if err != nil {
		return nil, err
	}
	where := "host"
	if t.Exec != nil {
		where = t.Exec.Dir
	}
	digest := Digest(objectsVersion, ObjectFlags, where, string(cfg))
	file := filepath.Join(t.Dir, ".kelp-objects-"+digest)
	t.objCmdsFile = filepath.Join(t.Dir, ".kelp-object-commands-"+digest)
	data, err := os.ReadFile(file)
	if err != nil {
		// The dry run records kbuild's environment under the same lock,
		// which a second lock of this process would wait for forever (a
		// fresh tree has neither record): the environment comes first.
		if _, err := t.kbuildEnv(ctx); err != nil {
			return nil, err
		}
		unlock, err := lockFile(t.Dir + ".lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
		if data, err = os.ReadFile(file); err != nil {
			raws, cmds, err := t.dryRunObjects(ctx)
			if err != nil {
				return nil, err
			}
			// The commands first: the list of names marks the record
			// complete.
			if err := atomicfile.WriteFile(t.objCmdsFile, cmds, 0o644); err != nil {
				return nil, err
			}
			data = []byte(strings.Join(raws, "\n") + "\n")
			if err := atomicfile.WriteFile(file, data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	names, err := newObjectNames(data)
	if err != nil {
		return nil, fmt.Errorf("kbuild's dry run of %s %w", t.Dir, err)
	}
	return names, nil
}

// dryRunObjects returns the names of the objects kbuild's dry run of the
// whole tree compiles, as kbuild names them, sorted, and the record of
// their commands (see recordedCommand).
func (t *Tree) dryRunObjects(ctx context.Context) ([]string, []byte, error) {
	// -k: a directory whose non-C prerequisites are missing from a
	// prepared tree does not end the run (see onlyCertsFailed).
	stdout, stderr, err := t.wholeDryRun(ctx, t.Jobs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if !onlyCertsFailed(stderr) {
			return nil, nil, fmt.Errorf("kbuild's dry run of %s: %v: %s", t.Dir, err, tail(strings.TrimSpace(stderr), 1))
		}
	}
	cmds := map[string]string{}
	var raws []string
	for _, line := range strings.Split(stdout, "\n") {
		_, rest, ok := strings.Cut(line, "scripts/basic/fixdep ")
		if !ok {
			continue
		}
		dotd, after, _ := strings.Cut(rest, " ")
		raw, _, _ := strings.Cut(after, " ")
		if dotd == "" || !strings.HasSuffix(raw, ".o") {
			continue
		}
		cmd := fixdepCommand(rest, dotd, raw)
		if prev, seen := cmds[raw]; seen {
			if prev != cmd {
				cmds[raw] = "" // two commands: the object's own dry run says
			}
			continue
		}
		cmds[raw] = cmd
		raws = append(raws, raw)
	}
	slices.Sort(raws)
	// Each command is kept with the digest of what it derives from
	// (commandKey), which its use checks.
	keys := &keyDigests{}
	var rec bytes.Buffer
	rec.WriteString(objCmdsHeader)
	for _, raw := range raws {
		if cmd := cmds[raw]; cmd != "" {
			key, err := t.commandKeyWith(ctx, raw, keys)
			if err != nil {
				return nil, nil, err
			}
			rec.WriteString(raw + "\x00" + key + "\x00" + cmd + "\n")
		}
	}
	return raws, rec.Bytes(), nil
}

// wholeDryRun runs kbuild's dry run of the whole tree (-k) on jobs cores
// and returns what make and every make it descends into printed. With
// more than one job, make's sub-makes run at once, and each writes its
// output through its own buffer, cut at any byte, so that the command
// lines of two of them could interleave in one pipe: each sub-make
// therefore writes to files of its own (MAKE names a script that runs
// make so). The lines that run under -n are the same ($(MAKE) lines);
// only where their output goes differs.
func (t *Tree) wholeDryRun(ctx context.Context, jobs int) (stdout, stderr string, err error) {
	if jobs <= 1 {
		return t.makeDryRun(ctx, append([]string{"-k"}, objectRulesOnly...)...)
	}
	dir, err := os.MkdirTemp("", "kelp-dry-run-")
	if err != nil {
		return "", err.Error(), err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "make")
	text := "#!/bin/sh\nout=$(mktemp '" + dir + "/out.XXXXXXXX') || exit 1\nexec make \"$@\" >\"$out\" 2>\"$out.err\"\n"
	if strings.Contains(dir, "'") {
		return "", "", fmt.Errorf("temporary directory %q: a quote in its name", dir)
	}
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		return "", err.Error(), err
	}
	top, topErr, err := t.makeDryRun(ctx, append([]string{"-k", "-j" + strconv.Itoa(jobs), "MAKE=" + script}, objectRulesOnly...)...)
	outs, gerr := filepath.Glob(filepath.Join(dir, "out.*"))
	if gerr != nil {
		return "", gerr.Error(), gerr
	}
	slices.Sort(outs)
	var o, e strings.Builder
	size := len(top) + len(outs)
	for _, f := range outs {
		if st, err := os.Stat(f); err == nil && !strings.HasSuffix(f, ".err") {
			size += int(st.Size())
		}
	}
	o.Grow(size)
	o.WriteString(top)
	e.WriteString(topErr)
	for _, f := range outs {
		data, rerr := os.ReadFile(f)
		if rerr != nil {
			return "", rerr.Error(), rerr
		}
		w := &o
		if strings.HasSuffix(f, ".err") {
			w = &e
		}
		w.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			w.WriteByte('\n')
		}
	}
	return o.String(), e.String(), err
}

// objectRulesOnly are make variables given to the whole tree's dry run:
// the rules that compile an object from C or assembly run only the
// compile and its command record (kbuild's cmd_and_fixdep, the line the
// dry run is read for, expanded as kbuild expands it), without the
// commands after it (genksyms, objtool's dependencies, mcount, checks),
// which nothing reads from this run and which make otherwise expands for
// every object of the tree: about a quarter of the run's time.
var objectRulesOnly = []string{
	"rule_cc_o_c=$(call cmd_and_fixdep,cc_o_c)",
	"rule_as_o_S=$(call cmd_and_fixdep,as_o_S)",
}

// objCmdsHeader starts the record of the whole tree's object commands:
// one line per object, its kbuild name, the digest of what its command
// derives from (commandKey) and its command, NUL-separated.
const objCmdsHeader = "kelp object commands v1\n"

// fixdepCommand reads, from the rest of kbuild's command-record line
// after "scripts/basic/fixdep " (DOTD OBJ 'command' > DOTCMD), the
// command kbuild records for obj; "" when the line is not that shape.
func fixdepCommand(rest, dotd, obj string) string {
	after, ok := strings.CutPrefix(rest, dotd+" "+obj+" ")
	if !ok {
		return ""
	}
	cmd, tail, ok := singleQuoted(after)
	if !ok || !strings.HasPrefix(strings.TrimSpace(tail), "> "+strings.TrimSuffix(dotd, ".d")+".cmd") {
		return ""
	}
	return cmd
}

// recordedCommand is kbuild's command for the object it names raw, from
// the whole tree's dry run, when the tree has that record, it names one
// command for raw, and that command derives from what key digests. The
// record's lines are sorted by name, so a lookup reads a few of its lines,
// not the whole record (tens of megabytes).
func (t *Tree) recordedCommand(ctx context.Context, raw, key string) (string, bool) {
	if _, err := t.kbuildObjects(ctx); err != nil || t.objCmdsFile == "" {
		return "", false
	}
	f, err := os.Open(t.objCmdsFile)
	if err != nil {
		return "", false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", false
	}
	keyed, ok := findRecord(f, st.Size(), raw)
	if !ok {
		return "", false
	}
	k, cmd, ok := strings.Cut(keyed, "\x00")
	if !ok || k != key {
		return "", false
	}
	return cmd, true
}

// findRecord returns what follows "name\x00" on name's line of the record
// r of size bytes: objCmdsHeader, then lines "NAME\x00REST\n" sorted by
// NAME. It bisects by byte offset down to a few lines, then reads them in
// order. A record that is not sorted can only make it miss a line (the
// caller then asks kbuild), never return another name's line.
func findRecord(r io.ReaderAt, size int64, name string) (string, bool) {
	head := make([]byte, len(objCmdsHeader))
	if _, err := r.ReadAt(head, 0); err != nil || string(head) != objCmdsHeader {
		return "", false
	}
	// The line of name, if any, starts in [lo, hi]; lo is a line start
	// whose name sorts before name (or the first line).
	lo, hi := int64(len(objCmdsHeader)), size
	for hi-lo > 1<<16 {
		mid := lo + (hi-lo)/2
		s, line, ok := lineFrom(r, size, mid)
		if !ok || s >= hi {
			break // no line starts in [mid, hi): the rest is a few lines
		}
		if n, _, _ := bytes.Cut(line, []byte{0}); string(n) < name {
			lo = s
		} else {
			hi = s
		}
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, lo, size-lo), 1<<16)
	for at := lo; at <= hi; {
		line, _ := br.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			return "", false // a line cut short: the record is incomplete
		}
		n, rest, ok := bytes.Cut(line[:len(line)-1], []byte{0})
		switch {
		case ok && string(n) == name:
			return string(rest), true
		case string(n) > name:
			return "", false
		}
		at += int64(len(line))
	}
	return "", false
}

// lineFrom returns the first whole line of r that starts at or after off
// (off > 0), without its newline, and where it starts.
func lineFrom(r io.ReaderAt, size, off int64) (int64, []byte, bool) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, off-1, size-off+1), 1<<14)
	skipped, err := br.ReadBytes('\n')
	if err != nil {
		return 0, nil, false
	}
	line, err := br.ReadBytes('\n')
	if err != nil || line[len(line)-1] != '\n' {
		return 0, nil, false
	}
	return off - 1 + int64(len(skipped)), line[:len(line)-1], true
}

// failedTarget is make's report of a target it could not make.
var failedTarget = regexp.MustCompile(`\*\*\* \[[^\]]*: ([^\]]+)\] Error [0-9]+`)

// onlyCertsFailed reports whether every target the dry run failed on is
// certs/ (and it failed on some): the key files a config names there
// (CONFIG_MODULE_SIG_KEY, CONFIG_SYSTEM_TRUSTED_KEYS) are not in a
// source tree and may have no rule to make them (Debian's cloud config
// names "output/signing_key.pem"), while every other directory was
// walked. Any other failure could leave objects out of the list.
func onlyCertsFailed(stderr string) bool {
	ms := failedTarget.FindAllStringSubmatch(stderr, -1)
	for _, m := range ms {
		if m[1] != "certs" && !strings.HasPrefix(m[1], "certs/") {
			return false
		}
	}
	return len(ms) > 0
}
