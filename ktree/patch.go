package ktree

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Patch is a unified diff against a kernel tree (as git or diff -u write
// it, applied with -p1: the first path component, whatever it is, is
// dropped).
type Patch struct {
	Files []FilePatch
}

// FilePatch is the part of a patch that changes one file.
type FilePatch struct {
	Path  string // in the tree, e.g. "fs/proc/cmdline.c"
	Hunks []Hunk
}

// Hunk is one hunk: the old text at Start (0-based line) and its
// replacement.
type Hunk struct {
	Start    int
	Old, New []string // lines with their "\n"
}

// Merge combines patches written against the same tree into one: the
// hunks of a file changed by several patches are applied in one pass
// (they must not overlap).
func Merge(ps ...*Patch) *Patch {
	out := &Patch{}
	for _, p := range ps {
		for _, f := range p.Files {
			if g := out.File(f.Path); g != nil {
				g.Hunks = append(g.Hunks, f.Hunks...)
				sort.SliceStable(g.Hunks, func(i, j int) bool { return g.Hunks[i].Start < g.Hunks[j].Start })
				continue
			}
			out.Files = append(out.Files, FilePatch{Path: f.Path, Hunks: append([]Hunk(nil), f.Hunks...)})
		}
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	return out
}

// Paths returns the files the patch changes, sorted.
func (p *Patch) Paths() []string {
	out := make([]string, len(p.Files))
	for i, f := range p.Files {
		out[i] = f.Path
	}
	return out
}

// File returns the changes to the file at path, or nil.
func (p *Patch) File(path string) *FilePatch {
	for i := range p.Files {
		if p.Files[i].Path == path {
			return &p.Files[i]
		}
	}
	return nil
}

var hunkRE = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@`)

// ParsePatch reads a unified diff. New and deleted files are refused: a
// livepatch replaces code of existing translation units.
func ParsePatch(data []byte) (*Patch, error) {
	p := &Patch{}
	var cur *FilePatch
	var h *Hunk
	var oldName string
	oldLeft, newLeft := 0, 0 // lines the current hunk header still announces
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "--- ") && oldLeft == 0 && newLeft == 0:
			oldName = pathOf(l[4:])
			cur, h = nil, nil
			continue
		case strings.HasPrefix(l, "+++ ") && cur == nil && h == nil:
			newName := pathOf(l[4:])
			if newName == "/dev/null" {
				return nil, fmt.Errorf("patch: %s: deleting a file cannot be live patched", strip(oldName))
			}
			if oldName == "/dev/null" {
				return nil, fmt.Errorf("patch: %s: a new file cannot be live patched (put new code into an existing file)", strip(newName))
			}
			name := strip(newName)
			if name == "" || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
				return nil, fmt.Errorf("patch: %q is not a clean path in the tree", newName)
			}
			if p.File(name) != nil {
				return nil, fmt.Errorf("patch: %s appears twice", name)
			}
			p.Files = append(p.Files, FilePatch{Path: name})
			cur = &p.Files[len(p.Files)-1]
			continue
		case strings.HasPrefix(l, "@@") && oldLeft == 0 && newLeft == 0:
			if cur == nil {
				return nil, fmt.Errorf("patch: hunk %q before any file", l)
			}
			m := hunkRE.FindStringSubmatch(l)
			if m == nil {
				return nil, fmt.Errorf("patch %s: bad hunk header %q", cur.Path, l)
			}
			start, _ := strconv.Atoi(m[1])
			oldLeft, newLeft = count(m[2]), count(m[3])
			if m[2] != "0" && start > 0 {
				start--
			}
			cur.Hunks = append(cur.Hunks, Hunk{Start: start})
			h = &cur.Hunks[len(cur.Hunks)-1]
			continue
		case h == nil || oldLeft == 0 && newLeft == 0:
			h = nil
			continue // preamble, trailers: commit message, diff --git, index lines
		case strings.HasPrefix(l, `\`): // "\ No newline at end of file"
			continue
		}
		if l == "" {
			l = " " // some mailers strip the blank of an empty context line
		}
		text := l[1:] + "\n"
		switch l[0] {
		case ' ':
			h.Old = append(h.Old, text)
			h.New = append(h.New, text)
			oldLeft--
			newLeft--
		case '-':
			h.Old = append(h.Old, text)
			oldLeft--
		case '+':
			h.New = append(h.New, text)
			newLeft--
		default:
			return nil, fmt.Errorf("patch %s: hunk at line %d ends early: %q is not a context, removed or added line (%d old and %d new lines still announced)", cur.Path, h.Start+1, l, oldLeft, newLeft)
		}
		if oldLeft < 0 || newLeft < 0 {
			return nil, fmt.Errorf("patch %s: hunk at line %d has more lines than its header announces", cur.Path, h.Start+1)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	if h != nil && (oldLeft > 0 || newLeft > 0) {
		return nil, fmt.Errorf("patch %s: hunk at line %d is truncated: %d old and %d new lines announced by its header are missing", cur.Path, h.Start+1, oldLeft, newLeft)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("patch: the file is empty")
	}
	if len(p.Files) == 0 {
		return nil, fmt.Errorf("patch: not a unified diff: no \"--- a/FILE\" / \"+++ b/FILE\" file header with @@ hunks")
	}
	for _, f := range p.Files {
		if len(f.Hunks) == 0 {
			return nil, fmt.Errorf("patch %s: no hunks", f.Path)
		}
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	return p, nil
}

// count reads a hunk header's line count (absent means 1).
func count(s string) int {
	if s == "" {
		return 1
	}
	n, _ := strconv.Atoi(s)
	return n
}

func pathOf(s string) string {
	name, _, _ := strings.Cut(s, "\t")
	return strings.TrimSpace(name)
}

// strip drops the first path component (patch -p1).
func strip(name string) string {
	_, rest, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return rest
}

// Apply applies the file's hunks to src. Context must match; a hunk that
// does not match at its stated line is looked for after the previous one.
// With guards, a #line directive follows each changed hunk so that the
// code after it keeps the line numbers it has in src (and __LINE__ in
// unchanged functions does not move).
func (f *FilePatch) Apply(src string, guards bool) (string, error) {
	lines := strings.SplitAfter(src, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
		lines[n-1] += "\n"
	}
	var out []string
	pos := 0
	for _, h := range f.Hunks {
		at := h.Start
		if at < pos || !matchAt(lines, at, h.Old) {
			at = -1
			for i := pos; i+len(h.Old) <= len(lines); i++ {
				if matchAt(lines, i, h.Old) {
					at = i
					break
				}
			}
			if at < 0 {
				return "", fmt.Errorf("patch %s: hunk at line %d does not apply", f.Path, h.Start+1)
			}
		}
		out = append(out, lines[pos:at]...)
		if guards {
			out = append(out, guarded(h, at, f.Path)...)
		} else {
			out = append(out, h.New...)
		}
		pos = at + len(h.Old)
	}
	out = append(out, lines[pos:]...)
	return strings.Join(out, ""), nil
}

// guarded returns the new text of h (applied at old line at) with a
// #line directive after its last change, naming the old line number of
// the context that follows. A directive cannot follow a line continued
// with a backslash (a macro body); there the hunk stays unguarded.
func guarded(h Hunk, at int, file string) []string {
	// Trailing context common to both sides.
	n := 0
	for n < len(h.Old) && n < len(h.New) && h.Old[len(h.Old)-1-n] == h.New[len(h.New)-1-n] {
		n++
	}
	if n == 0 || n == len(h.Old) && n == len(h.New) {
		return h.New
	}
	head := h.New[:len(h.New)-n]
	if len(head) > 0 && strings.HasSuffix(strings.TrimRight(head[len(head)-1], " \t\n"), `\`) {
		return h.New
	}
	oldLine := at + len(h.Old) - n + 1 // 1-based line of the first trailing context line
	out := append([]string{}, head...)
	out = append(out, fmt.Sprintf("#line %d %q\n", oldLine, file))
	return append(out, h.New[len(h.New)-n:]...)
}

func matchAt(lines []string, at int, want []string) bool {
	if at < 0 || at+len(want) > len(lines) {
		return false
	}
	for i, w := range want {
		if lines[at+i] != w {
			return false
		}
	}
	return true
}
