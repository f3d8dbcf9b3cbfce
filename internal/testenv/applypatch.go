package testenv

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// applyPatch applies the hunks of a unified diff for the file named file
// (as it appears after "+++ b/") to src. Context must match exactly; a
// hunk that does not match at its stated line is looked for elsewhere.
// It is small on purpose: test patches are written against the tree.
func applyPatch(src, patch, file string) (string, error) {
	lines := strings.SplitAfter(src, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var out []string
	pos := 0 // next unconsumed line of lines
	hunks, err := hunksFor(patch, file)
	if err != nil {
		return "", err
	}
	for _, h := range hunks {
		at := h.start
		if !matchAt(lines, at, h.old) {
			at = -1
			for i := pos; i+len(h.old) <= len(lines); i++ {
				if matchAt(lines, i, h.old) {
					at = i
					break
				}
			}
			if at < 0 {
				return "", fmt.Errorf("patch %s: hunk at line %d does not apply", file, h.start+1)
			}
		}
		if at < pos {
			return "", fmt.Errorf("patch %s: hunk at line %d overlaps the previous one", file, h.start+1)
		}
		out = append(out, lines[pos:at]...)
		out = append(out, h.new...)
		pos = at + len(h.old)
	}
	out = append(out, lines[pos:]...)
	return strings.Join(out, ""), nil
}

type hunk struct {
	start    int // 0-based line of the old text
	old, new []string
}

var hunkRE = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@`)

func hunksFor(patch, file string) ([]hunk, error) {
	var hs []hunk
	in := false
	var cur *hunk
	for _, l := range strings.SplitAfter(patch, "\n") {
		switch {
		case strings.HasPrefix(l, "--- "):
			cur = nil
			continue
		case strings.HasPrefix(l, "+++ "):
			name, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(l, "+++ ")), "\t")
			in = name == "b/"+file
			continue
		case !in:
			continue
		case strings.HasPrefix(l, "@@"):
			m := hunkRE.FindStringSubmatch(l)
			if m == nil {
				return nil, fmt.Errorf("patch %s: bad hunk header %q", file, strings.TrimSpace(l))
			}
			start, _ := strconv.Atoi(m[1])
			if m[2] != "0" && start > 0 {
				start--
			}
			hs = append(hs, hunk{start: start})
			cur = &hs[len(hs)-1]
			continue
		case cur == nil || l == "":
			continue
		case strings.HasPrefix(l, `\`): // "\ No newline at end of file"
			continue
		}
		text := l[1:]
		switch l[0] {
		case ' ':
			cur.old = append(cur.old, text)
			cur.new = append(cur.new, text)
		case '-':
			cur.old = append(cur.old, text)
		case '+':
			cur.new = append(cur.new, text)
		default:
			return nil, fmt.Errorf("patch %s: unexpected line %q", file, strings.TrimSpace(l))
		}
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("patch: no hunks for %s", file)
	}
	return hs, nil
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
