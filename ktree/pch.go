package ktree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// A rebuild compiles its patched copy against a precompiled header. Most
// of a kernel object's compile is parsing the headers its source includes
// first (gcc's -ftime-report: 95% of fs/proc/cmdline.o's), and a patch
// rarely changes them. So, once an object's original is in the object
// cache and the object was rebuilt headAfter times, the headers its
// source includes before its first line of code (the head: #include and
// #define lines, comments) are precompiled with
// the patched compile's flags, and kept in the original's cache entry:
// they are valid exactly as long as the entry (every file the compiler
// read is as it was). A later build whose patched copy starts with the
// same head compiles only the rest of it, after gcc has loaded the
// precompiled state.
//
// gcc's precompiled headers are its parser's state, the same as parsing
// the header. Each one is still proved on its object before it is used:
// the build that makes it also compiles its own patched copy with it,
// and the header is kept for use only when that object is byte for byte
// the one compiled without it. A patch that changes a header, a build in
// a build root, a build with one job and one with Tree.NoHeads do not use
// them.

// pchVersion names the layout of a precompiled head in a cache entry.
const pchVersion = "pch-v1"

// Markers in a precompiled head's directory: made and proved, or not to
// be used (the reason inside).
const (
	pchProved = "proved"
	pchFailed = "failed"
)

// sourceHead returns the leading lines of C source src before its first
// line of code: #include and single-line #define and #undef lines, blank
// lines and comments; and their count. It is "" when they include no
// header.
func sourceHead(src string) (head string, lines int) {
	inComment := false
	includes := false
	end := 0
	for line := range strings.Lines(src) {
		if !strings.HasSuffix(line, "\n") {
			break // the file's last line: code, or nothing to precompile
		}
		text := strings.TrimSpace(line)
		if inComment {
			_, after, closed := strings.Cut(text, "*/")
			if closed && strings.TrimSpace(after) != "" {
				break
			}
			inComment = !closed
		} else {
			switch {
			case text == "", strings.HasPrefix(text, "//"):
			case strings.HasPrefix(text, "/*"):
				_, after, closed := strings.Cut(text[2:], "*/")
				if closed && strings.TrimSpace(after) != "" {
					return headOf(src, end, lines, includes)
				}
				inComment = !closed
			case directive(text, "include"):
				includes = true
			case directive(text, "define"), directive(text, "undef"):
			default:
				return headOf(src, end, lines, includes)
			}
			if strings.HasSuffix(text, "\\") || strings.Contains(text, "/*") && !strings.HasPrefix(text, "/*") {
				// A continued line, or a comment opening after a
				// directive: where it ends is not read here.
				return headOf(src, end, lines, includes)
			}
		}
		end += len(line)
		lines++
	}
	return headOf(src, end, lines, includes)
}

func headOf(src string, end, lines int, includes bool) (string, int) {
	if !includes {
		return "", 0
	}
	return src[:end], lines
}

// directive tells whether line is the preprocessor directive name.
func directive(line, name string) bool {
	rest, ok := strings.CutPrefix(line, "#")
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " \t")
	rest, ok = strings.CutPrefix(rest, name)
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '<' || rest[0] == '"')
}

// headSource is what an object's precompiled head is planned from.
type headSource struct {
	head  string // its source's head (sourceHead)
	lines int    // the head's lines
	// patched is the patched copy's text, without kelp's #line.
	patched string
}

// pchHead is an object's precompiled head: where it is kept, and the
// head it is made of.
type pchHead struct {
	headSource
	dir string // in the original's cache entry
	// proved and failed are the markers found when the build started.
	proved, failed bool
	// made tells that this build made it (it is to be proved).
	made bool
}

// planHead returns the precompiled head of the object whose original is
// in the cache entry entry, made of s, or nil when s's patched copy does
// not start with its source's head.
func planHead(entry string, s headSource) *pchHead {
	if s.head == "" || !strings.HasPrefix(s.patched, s.head) {
		return nil
	}
	h := &pchHead{headSource: s, dir: filepath.Join(entry, "pch-"+Digest(pchVersion, s.head))}
	h.proved = fileExists(filepath.Join(h.dir, pchProved))
	h.failed = fileExists(filepath.Join(h.dir, pchFailed))
	return h
}

var includeFlagRE = regexp.MustCompile(` -include (\S+)`)

// pchFlags are the flags of obj's patched compile against a precompiled
// head: kbuild's, without its -include files (which the head includes
// first, in their order) and its dependency list.
func pchFlags(flags string) (string, []string) {
	var forced []string
	for _, m := range includeFlagRE.FindAllStringSubmatch(flags, -1) {
		forced = append(forced, m[1])
	}
	flags = includeFlagRE.ReplaceAllString(flags, "")
	return mmdRE.ReplaceAllString(flags, ""), forced
}

// headFlags are the flags of obj's compiles around a precompiled head
// (pchFlags, then kelp's include directory include), kbuild's
// post-processing, the source's name as kbuild gives it and the -include
// files kbuild's flags named.
func headFlags(cmd, obj, src, include string) (flags, post, ksrc string, forced []string, err error) {
	flags, post, _, ksrc, err = compileFlags(cmd, obj, src)
	if err != nil {
		return "", "", "", nil, err
	}
	flags, forced = pchFlags(flags)
	if include != "" {
		flags += " -I" + shellQuote(include)
	}
	return flags, post, ksrc, forced, nil
}

// makeHead precompiles h for obj (kbuild's command cmd, from src) with
// the patched compile's flags (include: the directory of kelp's headers;
// extra as compileCopy's), into h.dir.
func (t *Tree) makeHead(ctx context.Context, h *pchHead, cmd, obj, src, include, extra string) error {
	flags, _, ksrc, forced, err := headFlags(cmd, obj, src, include)
	if err != nil {
		return err
	}
	var text strings.Builder
	for _, f := range forced {
		if f, err = unquote(f); err != nil {
			return err
		}
		text.WriteString("#include " + strconv.Quote(t.abs(f)) + "\n")
	}
	text.WriteString("#line 1 " + strconv.Quote(ksrc) + "\n" + h.head)
	// Made beside the head's directory and renamed into place: a build
	// reading it never sees it half written.
	tmp, err := os.MkdirTemp(filepath.Dir(h.dir), "pch-new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "head.h"), []byte(text.String()), 0o644); err != nil {
		return err
	}
	script := flags + " -iquote " + shellQuote(ksrcDir(ksrc)) + extra + " -x c-header -o " + shellQuote(filepath.Join(tmp, "head.h.gch")) + " " + shellQuote(filepath.Join(tmp, "head.h"))
	if err := run(ctx, t.Exec, t.Dir, "sh", "-c", script); err != nil {
		return err
	}
	if err := os.RemoveAll(h.dir); err != nil {
		return err
	}
	return os.Rename(tmp, h.dir)
}

// unquote undoes the shell quoting kbuild may give a file name ('...').
func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		return s, nil
	}
	w, rest, ok := singleQuoted(s)
	if !ok || rest != "" {
		return "", fmt.Errorf("-include %s: quoting not understood", s)
	}
	return w, nil
}

// compileHead compiles the patched copy at copyPath (h.patched) after
// the precompiled head h into outObj: the
// rest of the copy, from a file of the same name (gcc names the object's
// file symbol after it) in a directory of its own, with the copy's
// directory searched first for its quoted includes, as for the copy.
func (t *Tree) compileHead(ctx context.Context, h *pchHead, cmd, obj, src, copyPath, outObj, include, extra string) error {
	flags, post, ksrc, _, err := headFlags(cmd, obj, src, include)
	if err != nil {
		return err
	}
	rest := fmt.Sprintf("#line %d %s\n", h.lines+1, strconv.Quote(ksrc)) + h.patched[len(h.head):]
	body := filepath.Join(filepath.Dir(outObj), ".head", filepath.Base(copyPath))
	if err := os.MkdirAll(filepath.Dir(body), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(body, []byte(rest), 0o644); err != nil {
		return err
	}
	script := flags + " -Wp,-MMD," + shellQuote(outObj+".d") + " -iquote " + shellQuote(filepath.Dir(copyPath)) + " -iquote " + shellQuote(ksrcDir(ksrc)) + extra +
		" -include " + shellQuote(filepath.Join(h.dir, "head.h")) + " -Winvalid-pch -Werror=invalid-pch -c -o " + shellQuote(outObj) + " " + shellQuote(body)
	if post != "" {
		script += " && " + post + shellQuote(outObj)
	}
	return run(ctx, t.Exec, t.Dir, "sh", "-c", script)
}

// proveHead compiles the patched copy with the head this build made and
// keeps the head for use when that object is byte for byte patchedObj,
// compiled without it, and the original's entry is still valid.
func (t *Tree) proveHead(ctx context.Context, h *pchHead, cmd, obj, src, copyPath, patchedObj, include, extra string) error {
	out := patchedObj + ".head.o"
	if err := t.compileHead(ctx, h, cmd, obj, src, copyPath, out, include, extra); err != nil {
		return t.failHead(h, "compiling with it failed: "+err.Error())
	}
	a, err := os.ReadFile(patchedObj)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	if !bytes.Equal(a, b) {
		return t.failHead(h, "the object compiled with it differs from the one compiled without it")
	}
	if _, _, hit, err := t.Original(ctx, obj); err != nil || !hit {
		return errors.Join(err, errors.New("the original's cache entry changed while its head was made"))
	}
	if err := os.WriteFile(filepath.Join(h.dir, pchProved), nil, 0o644); err != nil {
		return err
	}
	pruneHeads(filepath.Dir(filepath.Dir(h.dir)), maxHeads)
	return atomicfile.WriteFile(t.hintFile(obj, h.head), []byte(h.dir), 0o644)
}

// headAfter is how many rebuilds of an object (builds that find its
// original in the object cache) go by before one makes a precompiled head
// of its source. Making one costs that build about a second, once, proved
// or not, and on real fixes most heads fail their proof: a build or two
// of a fix never pays for it, and an object rebuilt that often is likely
// to be rebuilt again.
const headAfter = 2

// rebuilds notes one more rebuild of the object whose original is in the
// cache entry entry, and returns how many it noted before this one (one
// byte each; 0 when it cannot note them).
func rebuilds(entry string) int {
	f, err := os.OpenFile(filepath.Join(entry, "rebuilds"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	if _, err := f.Write([]byte{'.'}); err != nil {
		return 0
	}
	return int(fi.Size())
}

// maxHeads is how many precompiled heads the object cache keeps (each
// tens of megabytes): those used last.
const maxHeads = 16

// pruneHeads removes the precompiled heads of the object cache at cache
// but the keep used last (a head's directory is touched as it is used).
// A build compiling after a head removed meanwhile compiles without it.
func pruneHeads(cache string, keep int) {
	gchs, err := filepath.Glob(filepath.Join(cache, "*", "pch-*", "head.h.gch"))
	if err != nil || len(gchs) <= keep {
		return
	}
	type head struct {
		dir  string
		used time.Time
	}
	var heads []head
	for _, g := range gchs {
		if fi, err := os.Stat(filepath.Dir(g)); err == nil {
			heads = append(heads, head{filepath.Dir(g), fi.ModTime()})
		}
	}
	slices.SortFunc(heads, func(a, b head) int { return b.used.Compare(a.used) })
	for _, h := range heads[min(keep, len(heads)):] {
		os.RemoveAll(h.dir)
	}
}

// headHint tells whether head, obj's source's head (sourceHead), which
// patched starts with, was proved in this tree and is still there, where
// it was proved: whether its patched compile waits for the original's
// cache entry, where the head is found again (planHead).
func (t *Tree) headHint(obj, head, patched string) bool {
	if head == "" || !strings.HasPrefix(patched, head) {
		return false
	}
	dir, err := os.ReadFile(t.hintFile(obj, head))
	return err == nil && filepath.IsAbs(string(dir)) && fileExists(filepath.Join(string(dir), pchProved))
}

// hintFile is where the tree notes where a head of obj was proved.
func (t *Tree) hintFile(obj, head string) string {
	return filepath.Join(t.Dir, ".kelp-heads", Digest(pchVersion, obj, head))
}

// failHead marks h not to be used, saying why, and removes what was
// precompiled (tens of megabytes).
func (t *Tree) failHead(h *pchHead, why string) error {
	os.Remove(filepath.Join(h.dir, "head.h.gch"))
	return os.WriteFile(filepath.Join(h.dir, pchFailed), []byte(why+"\n"), 0o644)
}
