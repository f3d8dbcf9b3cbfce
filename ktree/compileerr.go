package ktree

import (
	"errors"
	"regexp"
	"strings"
)

// CompileError is a compiler failure on an object: its message is one
// line naming the object and the compiler's first error; Output is all
// the compiler said.
type CompileError struct {
	Side   string // "original" or "patched"
	Object string // the object(s) being compiled
	First  string // the compiler's first error line
	Output string
}

func (e *CompileError) Error() string {
	return "compile " + e.Side + " " + e.Object + ": " + e.First
}

// compileError turns a failed compile command into a CompileError;
// other errors (a cancelled context) pass through.
func compileError(side, obj string, err error) error {
	var re *RunError
	if !errors.As(err, &re) {
		return err
	}
	return &CompileError{Side: side, Object: obj, First: FirstError(re.Output, re.Err.Error()), Output: re.Output}
}

var (
	diagErrorRE = regexp.MustCompile(`^\S+:\d+(:\d+)?: (fatal )?error: `)
	toolErrorRE = regexp.MustCompile(`(?i)(^|: )(fatal )?error: `)
)

// FirstError picks the compiler's first error out of its output (gcc's
// "file:line:col: error: ..." lines come before make's trailer), then
// any other tool's "error:" line; fallback when there is none.
func FirstError(output, fallback string) string {
	lines := strings.Split(output, "\n")
	for _, re := range []*regexp.Regexp{diagErrorRE, toolErrorRE} {
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if re.MatchString(l) && !strings.HasPrefix(l, "make") {
				return l
			}
		}
	}
	return fallback
}
