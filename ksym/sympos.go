package ksym

import (
	"fmt"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// NotFoundError reports that an object's symbol table lacks a name the
// unit defines: the unit was not built from the target's source, config
// or compiler.
type NotFoundError struct {
	Object, Name string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("symbol %s is not in %s's symbol table (was the object compiled from the target kernel's source, config and compiler?)", e.Name, e.Object)
}

// Candidate is one instance of an ambiguous name.
type Candidate struct {
	Pos           int    // sympos that would select it
	Addr          uint64 // as listed in the source
	Before, After string // names of its neighbours in the table
}

func (c Candidate) String() string {
	return fmt.Sprintf("sympos %d at %#x (after %s, before %s)", c.Pos, c.Addr, orNone(c.Before), orNone(c.After))
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// AmbiguousError reports that the instance a unit defines could not be
// told apart from other same-named ones; it lists them all.
type AmbiguousError struct {
	Object, Name, File string
	Candidates         []Candidate
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s defines %d symbols called %s and none of them is bound to %s by a uniquely named neighbour or by the unit's whole run of local symbols; candidates:", e.Object, len(e.Candidates), e.Name, orNone(e.File))
	for i, c := range e.Candidates {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" " + c.String())
	}
	b.WriteString(" (give a vmlinux with symbols, or avoid referencing the symbol from changed code)")
	return b.String()
}

// Locator finds the instances a unit (one compiled object of the target
// kernel) defines in the symbol table of the kernel object it is linked
// into.
type Locator struct {
	Table *Table
	unit  *unit
	// run are the table entries of the unit's run of locals in a
	// module's table (nil: not found), computed once (runDone).
	run     []int
	runDone bool
}

// NewLocator prepares sympos lookups for the symbols of the original
// compiled unit f within t. file overrides the unit's source file name
// (default: its first STT_FILE entry).
func NewLocator(t *Table, f *elfobj.File, file string) *Locator {
	u := newUnit(f)
	if file != "" {
		u.file = file
	}
	return &Locator{Table: t, unit: u}
}

// Sympos returns the position livepatch needs to find sym, a symbol the
// unit defines: 0 when its name is unique in the object, else its 1-based
// rank among the same-named symbols.
func (l *Locator) Sympos(sym *elfobj.Symbol) (int, error) {
	t := l.Table
	idx := t.Lookup(sym.Name)
	switch len(idx) {
	case 0:
		return 0, &NotFoundError{Object: t.Object, Name: sym.Name}
	case 1:
		return 0, nil
	}
	if !sym.IsLocal() {
		// A unit's global is the object's only global of that name.
		var globals []int
		for i, k := range idx {
			if t.Syms[k].Global() {
				globals = append(globals, i)
			}
		}
		if len(globals) == 1 {
			return globals[0] + 1, nil
		}
	}
	if t.Files {
		var same []int
		for i, k := range idx {
			if t.Syms[k].File == l.unit.file {
				same = append(same, i)
			}
		}
		if len(same) == 1 {
			return same[0] + 1, nil
		}
	}
	var anchored []int
	for i, k := range idx {
		if l.anchored(sym, k) {
			anchored = append(anchored, i)
		}
	}
	if len(anchored) == 1 {
		return anchored[0] + 1, nil
	}
	if k, ok := l.inRun(sym); ok {
		for i, j := range idx {
			if j == k {
				return i + 1, nil
			}
		}
	}
	return 0, l.ambiguous(sym.Name, idx)
}

// inRun finds the table entry of sym, a local the unit defines, in a
// module's table from the unit's whole run of locals. The linker keeps
// the locals of each object it links into a module together, in the
// object's own symbol-table order, and the loader keeps that order, so
// the unit's listable locals (those the module table lists) are one
// contiguous run of the table, but for the assembler's own local labels
// (.L names) the kernel's build kept. The run locates sym when the
// unit's sequence of locals, name for name, occurs in the table exactly
// once and contains a name the table lists once (that entry is the
// unit's own, so the one occurrence is the unit's run, not a
// look-alike). Any difference, a second occurrence or no unique name:
// not found.
func (l *Locator) inRun(sym *elfobj.Symbol) (int, bool) {
	t := l.Table
	if t.Object == Vmlinux || !sym.IsLocal() {
		// vmlinux is counted in address order, where a unit's
		// symbols are split by output section (anchored).
		return 0, false
	}
	if !l.runDone {
		l.runDone = true
		l.run = l.findRun()
	}
	if l.run == nil {
		return 0, false
	}
	for i, s := range l.unit.locals {
		if s == sym {
			return l.run[i], true
		}
	}
	return 0, false
}

// findRun returns the table entries of the unit's run of locals, or nil
// when it is not found exactly once with a uniquely named member.
func (l *Locator) findRun() []int {
	t, locals := l.Table, l.unit.locals
	n := len(locals)
	if n == 0 {
		return nil
	}
	var named []int // the table's entries without .L names
	for k, s := range t.Syms {
		if !strings.HasPrefix(s.Name, ".L") {
			named = append(named, k)
		}
	}
	at := -1
	for o := 0; o+n <= len(named); o++ {
		if !l.runMatches(named[o : o+n]) {
			continue
		}
		if at >= 0 {
			return nil // a second occurrence
		}
		at = o
	}
	if at < 0 {
		return nil
	}
	for _, s := range locals {
		if len(t.Lookup(s.Name)) == 1 {
			return named[at : at+n]
		}
	}
	return nil
}

// runMatches tells whether the table entries at ks are the unit's locals,
// name for name, all local.
func (l *Locator) runMatches(ks []int) bool {
	for i, s := range l.unit.locals {
		e := l.Table.Syms[ks[i]]
		if e.Name != s.Name || e.Global() {
			return false
		}
	}
	return true
}

func (l *Locator) ambiguous(name string, idx []int) error {
	t := l.Table
	e := &AmbiguousError{Object: t.Object, Name: name, File: l.unit.file}
	for i, k := range idx {
		c := Candidate{Pos: i + 1, Addr: t.Syms[k].Addr}
		if k > 0 {
			c.Before = t.Syms[k-1].Name
		}
		if k+1 < len(t.Syms) {
			c.After = t.Syms[k+1].Name
		}
		e.Candidates = append(e.Candidates, c)
	}
	return e
}

// anchored reports whether the table entry k, taken as the unit's sym,
// lines up with the unit's neighbouring symbols all the way to a symbol
// whose name is unique in the table, comparing group by group (symbols
// sharing an address).
func (l *Locator) anchored(sym *elfobj.Symbol, k int) bool {
	p, ok := l.unit.where[sym]
	if !ok || l.Table.Object != Vmlinux {
		// Module symbols are counted in symbol-table order, which
		// interleaves the units' locals and globals differently;
		// modules are located by file name (ModuleTable) instead.
		return false
	}
	seq := l.unit.classes[p.class]
	t := l.Table
	start, end := l.groupAt(k)
	for _, dir := range []int{-1, 1} {
		lo, hi := start, end
		for i := p.index + dir; i >= 0 && i < len(seq); i += dir {
			names := l.visible(seq[i])
			if len(names) == 0 {
				continue
			}
			if dir < 0 {
				hi = lo
				if hi == 0 {
					break
				}
				lo, _ = l.groupAt(hi - 1)
				for lo > 0 && prefixOnly(t.Syms[lo:hi]) {
					hi = lo
					lo, _ = l.groupAt(hi - 1)
				}
			} else {
				lo = hi
				if lo >= len(t.Syms) {
					break
				}
				_, hi = l.groupAt(lo)
				for hi < len(t.Syms) && prefixOnly(t.Syms[lo:hi]) {
					lo = hi
					_, hi = l.groupAt(lo)
				}
			}
			if !containsAll(t.Syms[lo:hi], names) {
				break
			}
			for _, n := range names {
				if len(t.Lookup(n)) == 1 {
					return true
				}
			}
		}
	}
	return false
}

// prefixOnly reports whether syms are all function prefix symbols:
// "__pfx_<fn>" (CONFIG_PREFIX_SYMBOLS, 6.2+) and "__cfi_<fn>" (kCFI),
// which objtool adds when it processes the whole of vmlinux (6.12 with
// IBT): the table lists them before each function, objects compiled on
// their own have none, so they are no neighbours.
func prefixOnly(syms []Symbol) bool {
	for _, s := range syms {
		if !strings.HasPrefix(s.Name, "__pfx_") && !strings.HasPrefix(s.Name, "__cfi_") {
			return false
		}
	}
	return len(syms) > 0
}

// groupAt returns the range of table entries sharing entry k's address.
func (l *Locator) groupAt(k int) (int, int) {
	t := l.Table
	lo, hi := k, k+1
	for lo > 0 && t.Syms[lo-1].Addr == t.Syms[k].Addr {
		lo--
	}
	for hi < len(t.Syms) && t.Syms[hi].Addr == t.Syms[k].Addr {
		hi++
	}
	return lo, hi
}

// visible returns the names of g that the table lists at all.
func (l *Locator) visible(g group) []string {
	var out []string
	for _, s := range g {
		if len(l.Table.Lookup(s.Name)) > 0 {
			out = append(out, s.Name)
		}
	}
	return out
}

func containsAll(syms []Symbol, names []string) bool {
	for _, n := range names {
		found := false
		for _, s := range syms {
			if s.Name == n {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
