package build

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Header is what a patch says about itself before its diff: the subject
// and description of a git format-patch mail or of a quilt/DEP-3 header,
// and every CVE id it names.
type Header struct {
	// Description is the subject line, a blank line and the body
	// paragraphs, without trailers (Signed-off-by:, Fixes:, …) and
	// backport lines ("commit <sha> upstream."); "" when the patch has no
	// header.
	Description string
	// CVEs are the CVE ids the header names anywhere (subject, body,
	// trailers), upper case, sorted, each once.
	CVEs []string
}

var (
	cveRE      = regexp.MustCompile(`(?i)\bCVE-(\d{4})-(\d{4,})\b`)
	cveExactRE = regexp.MustCompile(`^(?i)CVE-\d{4}-\d{4,}$`)
	// "[PATCH]", "[PATCH v2 3/7]", "[PATCH 6.1 12/40]", "[RFC PATCH]".
	subjectTagRE = regexp.MustCompile(`^(\[[^\]]*\]\s*)+`)
	trailerRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*: \S`)
	upstreamRE   = regexp.MustCompile(`(?i)^(\[\s*)?(upstream\s+)?commit\s+[0-9a-f]{7,40}\s*(upstream\.?|\])?\s*\]?$`)
	mboxFromRE   = regexp.MustCompile(`^From [0-9a-f]{40} `)
	gitShowRE    = regexp.MustCompile(`^commit [0-9a-f]{40}\b`)
)

// ValidCVE returns the canonical (upper case) form of a CVE id, or an
// error naming the form wanted.
func ValidCVE(s string) (string, error) {
	if !cveExactRE.MatchString(s) {
		return "", fmt.Errorf("%q is not a CVE id: want CVE-YYYY-NNNN (four or more digits)", s)
	}
	return strings.ToUpper(s), nil
}

// ParseHeader reads the header of one patch file: the text before its
// first diff line. A plain diff has none and yields an empty Header.
func ParseHeader(data []byte) Header {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var head []string
	for _, l := range lines {
		if startsDiff(l) {
			break
		}
		head = append(head, l)
	}
	var h Header
	h.CVEs = FindCVEs(strings.Join(head, "\n"))

	// Mail headers ("From <sha> …" of an mbox, or "From:", "Subject:",
	// "Date:" lines first) with folded continuations, up to the first
	// blank line.
	var subject string
	i := 0
	mail := false
	switch {
	case len(head) > 0 && mboxFromRE.MatchString(head[0]):
		i, mail = 1, true
	case len(head) > 0 && mailStartRE.MatchString(head[0]):
		mail = true
	}
	var body []string
	if !mail && len(head) > 0 && gitShowRE.MatchString(head[0]) {
		// git show / git log -p: "commit <sha>", Author:, Date:, then the
		// message indented by four spaces, its first line the subject.
		i = 1
		for i < len(head) && head[i] != "" {
			i++
		}
		for _, l := range head[i:] {
			body = append(body, strings.TrimPrefix(l, "    "))
		}
		for len(body) > 0 && strings.TrimSpace(body[0]) == "" {
			body = body[1:]
		}
		if len(body) > 0 {
			subject, body = strings.TrimSpace(body[0]), body[1:]
		}
		h.Description = describe(subject, body)
		return h
	}
	if mail {
		for i < len(head) && head[i] != "" {
			key, val, _ := strings.Cut(head[i], ":")
			i++
			for i < len(head) && isFolded(head[i]) {
				val += " " + strings.TrimSpace(head[i])
				i++
			}
			if strings.EqualFold(key, "Subject") && subject == "" {
				subject = strings.TrimSpace(subjectTagRE.ReplaceAllString(strings.TrimSpace(val), ""))
			}
		}
		body = head[i:]
	} else {
		body = head
	}
	// A DEP-3 header ("Description: summary" and indented lines) or a
	// quilt header with a "Subject:" line, in the body of a plain patch.
	var rest []string
	for k := 0; k < len(body); k++ {
		l := body[k]
		key, val, ok := strings.Cut(l, ":")
		if !mail && ok && subject == "" && (strings.EqualFold(key, "Subject") || strings.EqualFold(key, "Description")) {
			subject = strings.TrimSpace(subjectTagRE.ReplaceAllString(strings.TrimSpace(val), ""))
			for k+1 < len(body) && isFolded(body[k+1]) {
				k++
				if t := strings.TrimSpace(body[k]); t != "." {
					rest = append(rest, t)
				} else {
					rest = append(rest, "")
				}
			}
			rest = append(rest, "")
			continue
		}
		rest = append(rest, l)
	}
	h.Description = describe(subject, rest)
	return h
}

var mailStartRE = regexp.MustCompile(`^(?i)(From|Subject|Date|Message-Id): `)

func isFolded(l string) bool { return l != "" && (l[0] == ' ' || l[0] == '\t') }

// startsDiff tells whether l begins the diff part of a patch (or the
// "---" line git puts before its diffstat).
func startsDiff(l string) bool {
	return l == "---" || strings.HasPrefix(l, "diff ") || strings.HasPrefix(l, "--- ") ||
		strings.HasPrefix(l, "Index: ") || strings.HasPrefix(l, "+++ ") || strings.HasPrefix(l, "@@ ")
}

// describe joins the subject and the body paragraphs, dropping trailers,
// backport lines, DEP-3 fields and surrounding blank lines.
func describe(subject string, body []string) string {
	var paras [][]string
	var cur []string
	flush := func() {
		if len(cur) == 0 {
			return
		}
		// A paragraph of trailers only (Signed-off-by:, Fixes:, Link:,
		// DEP-3's Origin:, Bug:, …) is not description.
		all := true
		for _, l := range cur {
			if !trailerRE.MatchString(l) {
				all = false
			}
		}
		if !all {
			paras = append(paras, cur)
		}
		cur = nil
	}
	for _, l := range body {
		t := strings.TrimRight(l, " \t")
		if upstreamRE.MatchString(strings.TrimSpace(t)) {
			continue
		}
		if strings.TrimSpace(t) == "" {
			flush()
			continue
		}
		cur = append(cur, t)
	}
	flush()
	var parts []string
	if subject != "" {
		parts = append(parts, subject)
	}
	for _, p := range paras {
		parts = append(parts, strings.Join(p, "\n"))
	}
	return strings.Join(parts, "\n\n")
}

// FindCVEs returns the CVE ids s names, upper case, sorted, each once.
func FindCVEs(s string) []string {
	var out []string
	for _, m := range cveRE.FindAllString(s, -1) {
		out = append(out, strings.ToUpper(m))
	}
	slices.SortFunc(out, compareCVE)
	return slices.Compact(out)
}

// Summary is the first line of a description.
func Summary(desc string) string {
	first, _, _ := strings.Cut(desc, "\n")
	return first
}

// compareCVE orders CVE ids by year, then number (CVE-2024-9999 before
// CVE-2024-10000).
func compareCVE(a, b string) int {
	if len(a) != len(b) && a[:9] == b[:9] {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// SortCVEs sorts canonical CVE ids and drops repeats.
func SortCVEs(ids []string) []string {
	out := slices.Clone(ids)
	slices.SortFunc(out, compareCVE)
	return slices.Compact(out)
}
