// Package refusal is the one shape of "kelp will not build this patch":
// what is refused (a file of the patch, a compiled unit, a symbol and its
// section), why, and what the author can do instead. The tree stage
// (ktree), the object comparison (objdiff) and the build (build) return
// it, so a caller tells a refusal from a failure with one errors.As.
package refusal

import (
	"fmt"
	"strings"
)

// Reason is one reason a patch cannot become a livepatch.
type Reason struct {
	// Unit is what is refused: a file of the patch (fs/proc/base.c), a
	// compiled object (fs/proc/base.o), or the module being built.
	Unit    string `json:"unit"`
	Symbol  string `json:"symbol,omitempty"`
	Section string `json:"section,omitempty"`
	Reason  string `json:"reason"`
	// Hint is the way out, when there is one.
	Hint string `json:"hint,omitempty"`
}

// String is the reason on one line: "unit: symbol (section S): reason; hint".
func (r Reason) String() string {
	var b strings.Builder
	b.WriteString(r.Unit)
	if r.Symbol != "" {
		b.WriteString(": " + r.Symbol)
	}
	if r.Section != "" {
		fmt.Fprintf(&b, " (section %s)", r.Section)
	}
	b.WriteString(": " + r.Reason)
	if r.Hint != "" {
		b.WriteString("; " + r.Hint)
	}
	return b.String()
}

// Error is a refused patch, with every reason found.
type Error struct {
	Reasons []Reason
}

// New is a refusal of unit for one reason.
func New(unit, reason, hint string) *Error {
	return &Error{Reasons: []Reason{{Unit: unit, Reason: reason, Hint: hint}}}
}

func (e *Error) Error() string {
	if len(e.Reasons) == 1 {
		return "refused: " + e.Reasons[0].String()
	}
	return fmt.Sprintf("refused (%d reasons): %s", len(e.Reasons), strings.Join(e.Strings(), "; "))
}

// Strings returns each reason on its own line.
func (e *Error) Strings() []string {
	out := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		out[i] = r.String()
	}
	return out
}
