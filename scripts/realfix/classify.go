package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The result classes of a fix.
const (
	ClassNoCompile   = "does not compile alone"
	ClassNotBuilt    = "not built by Debian's config"
	ClassLoaded      = "built+loaded"
	ClassLoadFailed  = "built but failed to load"
	ClassTrue        = "refused with a true reason"
	ClassLimitation  = "refused by a kelp limitation"
	ClassUnclassfied = "unclassified"
)

// Hand classifications in classes.tsv name one of these.
var handClasses = map[string]string{
	"true-reason":     ClassTrue,
	"kelp-limitation": ClassLimitation,
}

// Outcome is what kelp did with one fix, before classification.
type Outcome struct {
	File    string `json:"file"`
	Changed int    `json:"changed_lines"`
	Patch   string `json:"patch"`
	SHA256  string `json:"patch_sha256"`
	Module  string `json:"module"`
	Build   string `json:"build"` // built, compile-error, not-built, refused
	// Configured: the target's config builds the file (kbuild's dry run).
	Configured bool     `json:"configured"`
	Message    string   `json:"message,omitempty"`
	Objects    []string `json:"objects,omitempty"`
	Funcs      []string `json:"functions,omitempty"`
	// Heads are the objects compiled after a precompiled head.
	Heads   []string `json:"precompiled_heads,omitempty"`
	Load    string   `json:"load,omitempty"` // loaded, failed (built ones, after the VM run)
	LoadLog string   `json:"load_log,omitempty"`
	Seconds float64  `json:"build_seconds"`
	// Kelp is the kelp version that built it (empty in results of runs
	// that did not record it).
	Kelp string `json:"kelp,omitempty"`
}

// Build outcomes.
const (
	BuildOK       = "built"
	BuildCompile  = "compile-error"
	BuildNotBuilt = "not-built"
	BuildRefused  = "refused"
)

// HandClass is one line of classes.tsv: a refusal looked at by hand.
type HandClass struct {
	File, Class, Reason string
}

// ReadClasses reads classes.tsv: file, class (true-reason or
// kelp-limitation), one-line reason, tab-separated; # starts a comment.
func ReadClasses(r io.Reader) (map[string]HandClass, error) {
	out := map[string]HandClass{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[0] == "" || strings.TrimSpace(f[2]) == "" {
			return nil, fmt.Errorf("classes line %d: want file, class and reason separated by tabs", n)
		}
		if handClasses[f[1]] == "" {
			return nil, fmt.Errorf("classes line %d: class %q is neither true-reason nor kelp-limitation", n, f[1])
		}
		if _, dup := out[f[0]]; dup {
			return nil, fmt.Errorf("classes line %d: %s classified twice", n, f[0])
		}
		out[f[0]] = HandClass{File: f[0], Class: handClasses[f[1]], Reason: strings.TrimSpace(f[2])}
	}
	return out, sc.Err()
}

// Row is one line of the result table.
type Row struct {
	Outcome
	Class  string
	Reason string // the hand classification's reason, for refusals
}

// Join classifies every outcome: compile errors, objects the config does
// not build and VM results by what happened, refusals by the hand
// classification (unclassified without one). It also returns the hand
// classifications no outcome used, stale entries to look at.
func Join(outs []Outcome, classes map[string]HandClass) ([]Row, []string) {
	used := map[string]bool{}
	rows := make([]Row, 0, len(outs))
	for _, o := range outs {
		r := Row{Outcome: o}
		switch {
		case !o.Configured || o.Build == BuildNotBuilt:
			r.Class = ClassNotBuilt
			if o.Build == BuildOK {
				// kelp compiles any object asked for; one the target
				// was not built from must never become a module.
				r.Reason = "kelp built a module for an object the config does not build"
			}
		case o.Build == BuildCompile:
			r.Class = ClassNoCompile
		case o.Build == BuildOK:
			if o.Load == "loaded" {
				r.Class = ClassLoaded
			} else {
				r.Class = ClassLoadFailed
			}
		default:
			if c, ok := classes[o.File]; ok {
				r.Class, r.Reason = c.Class, c.Reason
				used[o.File] = true
			} else {
				r.Class = ClassUnclassfied
			}
		}
		rows = append(rows, r)
	}
	var stale []string
	for f := range classes {
		if !used[f] {
			stale = append(stale, f)
		}
	}
	sort.Strings(stale)
	return rows, stale
}

// Summary counts the rows per class.
type Summary struct {
	Total, CompileAlone int
	ByClass             map[string]int
	// TargetNotLoaded counts the built+loaded fixes of a module that was
	// not loaded in the guest: loaded, but proven on nothing.
	TargetNotLoaded int
}

// Summarize counts rows: the fixes that compile alone are those whose
// object the config builds and that compile without the rest of their
// series.
func Summarize(rows []Row) Summary {
	s := Summary{Total: len(rows), ByClass: map[string]int{}}
	for _, r := range rows {
		s.ByClass[r.Class]++
		if r.Class != ClassNoCompile && r.Class != ClassNotBuilt {
			s.CompileAlone++
		}
		if r.Class == ClassLoaded && strings.Contains(r.LoadLog, " not loaded") {
			s.TargetNotLoaded++
		}
	}
	return s
}

// Rate is built+loaded over the fixes that compile alone, in percent.
func (s Summary) Rate() float64 {
	if s.CompileAlone == 0 {
		return 0
	}
	return 100 * float64(s.ByClass[ClassLoaded]) / float64(s.CompileAlone)
}
