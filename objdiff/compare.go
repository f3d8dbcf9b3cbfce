package objdiff

import (
	"bytes"
	"debug/elf"
	"fmt"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// bytesOf returns the element's contents (nil for SHT_NOBITS).
func (e *elem) bytesOf() []byte {
	if e.sec.Type == elf.SHT_NOBITS || e.off+e.size > uint64(len(e.sec.Data)) {
		return nil
	}
	return e.sec.Data[e.off : e.off+e.size]
}

// masked returns the element's bytes with every relocated field zeroed.
func (e *elem) masked() []byte {
	b := append([]byte(nil), e.bytesOf()...)
	arch := e.side.f.Arch()
	for _, r := range e.side.relocsIn(e.sec, e.off, e.size) {
		rt, _ := arch.Reloc(r.Type)
		for i := 0; i < rt.Size; i++ {
			if o := r.Offset - e.off + uint64(i); o < uint64(len(b)) {
				b[o] = 0
			}
		}
	}
	return b
}

// diff compares a patched element with its twin and says why they differ
// ("" when they do not). lines is set when the only differences are
// __LINE__ immediates passed to the line-taking helpers of lineArgs.
func diff(pe *elem) (why string, lines []lineChange) {
	oe := pe.twin
	if pe.size != oe.size {
		return fmt.Sprintf("size %d → %d", oe.size, pe.size), nil
	}
	if (pe.sec.Type == elf.SHT_NOBITS) != (oe.sec.Type == elf.SHT_NOBITS) {
		return "moved between initialised and zero-initialised data", nil
	}
	if why := diffRelocs(oe, pe); why != "" {
		return why, nil
	}
	if why := diffEntries(oe, pe); why != "" {
		return why, nil
	}
	ob, pb := oe.masked(), pe.masked()
	if bytes.Equal(ob, pb) {
		return "", nil
	}
	at := firstDiff(ob, pb)
	if pe.fn {
		if lines, ok := lineImmediatesOnly(oe, pe, ob, pb); ok {
			return fmt.Sprintf("only __LINE__ immediates differ (first at +%#x)", at), lines
		}
		return fmt.Sprintf("code differs at +%#x", at), nil
	}
	return fmt.Sprintf("contents differ at +%#x", at), nil
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

func diffRelocs(oe, pe *elem) string {
	or := oe.side.relocsIn(oe.sec, oe.off, oe.size)
	pr := pe.side.relocsIn(pe.sec, pe.off, pe.size)
	for i := 0; i < len(or) || i < len(pr); i++ {
		if i >= len(or) || i >= len(pr) {
			at := pe.size
			if i < len(pr) {
				at = pr[i].Offset - pe.off
			}
			return fmt.Sprintf("%d references instead of %d (first difference at +%#x)", len(pr), len(or), at)
		}
		o, p := or[i], pr[i]
		if o.Offset-oe.off != p.Offset-pe.off || o.Type != p.Type {
			return fmt.Sprintf("references differ at +%#x", p.Offset-pe.off)
		}
		ot, pt := oe.side.target(oe.sec, o), pe.side.target(pe.sec, p)
		if oe.side.ident(ot) != pe.side.ident(pt) && !sameAnon(oe.side, ot, pe.side, pt) {
			return fmt.Sprintf("reference at +%#x now to %s (was %s)", p.Offset-pe.off, describe(pe.side, pe.sec, p), describe(oe.side, oe.sec, o))
		}
	}
	return ""
}

// sameAnon reports whether two references to anonymous places of sections
// that are not string tables name the same bytes and references when both
// sides are read over the longer of their two extents. A place's extent
// ends where the next place anything refers to starts; a reference only
// one side makes (the patched code no longer points into a constant)
// shortens that side's extent without changing what is there.
func sameAnon(os *side, ot target, ps *side, pt target) bool {
	if ot.sec == nil || pt.sec == nil || ot.sec.Flags&elf.SHF_STRINGS != 0 || pt.sec.Flags&elf.SHF_STRINGS != 0 ||
		stripNumbering(ot.sec.Name) != stripNumbering(pt.sec.Name) {
		return false
	}
	oa, pa := ot.at, pt.at
	if oa < 0 || pa < 0 || oa >= int64(len(ot.sec.Data)) || pa >= int64(len(pt.sec.Data)) {
		return false
	}
	n := max(os.nextRef(ot.sec, oa)-oa, ps.nextRef(pt.sec, pa)-pa)
	if oa+n > int64(len(ot.sec.Data)) || pa+n > int64(len(pt.sec.Data)) {
		return false
	}
	return os.anonSpan(ot.sec, oa, oa+n) == ps.anonSpan(pt.sec, pa, pa+n)
}

// describe names a relocation target for a reason line.
func describe(s *side, from *elfobj.Section, r elfobj.Reloc) string {
	t := s.target(from, r)
	switch {
	case t.e != nil:
		if t.delta != 0 && !(t.delta < 0 && t.delta >= -8) {
			return fmt.Sprintf("%s%+d", t.e.sym.Name, t.delta)
		}
		return t.e.sym.Name
	case t.sec != nil:
		id := anonIdent(t.sec, t.off)
		if strings.HasPrefix(id, "str:") {
			return "string " + strings.TrimPrefix(id, "str:")
		}
		return t.sec.Name
	case t.undef != nil:
		return t.undef.Name
	case t.other != nil:
		return t.other.Name
	}
	return "nothing"
}

// diffEntries compares the special-section entries anchored in the two
// elements (jump labels, exception table, alternatives, ...).
func diffEntries(oe, pe *elem) string {
	oi, pi := entryIdents(oe, true), entryIdents(pe, true)
	if len(oi) != len(pi) {
		return fmt.Sprintf("%s entries differ", sectionsOf(pe))
	}
	for i := range oi {
		if oi[i] != pi[i] {
			sec, _, _ := strings.Cut(pi[i], "|")
			return sec + " entries differ"
		}
	}
	return ""
}

// lineFieldsDiffer reports whether the entries anchored in two equal
// elements differ in their __LINE__ fields, and in which sections.
func lineFieldsDiffer(oe, pe *elem) []string {
	oi, pi := entryIdents(oe, false), entryIdents(pe, false)
	if len(oi) != len(pi) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for i := range oi {
		if oi[i] != pi[i] {
			sec, _, _ := strings.Cut(pi[i], "|")
			if !seen[sec] {
				seen[sec] = true
				out = append(out, sec)
			}
		}
	}
	return out
}

func sectionsOf(e *elem) string {
	seen := map[string]bool{}
	var out []string
	for _, en := range e.side.entries[e] {
		if !seen[en.sec.Name] {
			seen[en.sec.Name] = true
			out = append(out, en.sec.Name)
		}
	}
	for _, en := range e.twin.side.entries[e.twin] {
		if !seen[en.sec.Name] {
			seen[en.sec.Name] = true
			out = append(out, en.sec.Name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// entryIdents names each entry anchored in e by its section, where in e
// it points, its bytes without relocated or __LINE__ fields and its
// references; sorted.
func entryIdents(e *elem, maskLine bool) []string {
	s := e.side
	var out []string
	for _, en := range s.entries[e] {
		var b strings.Builder
		fmt.Fprintf(&b, "%s|%d|", en.sec.Name, en.at)
		n := en.size
		data := make([]byte, n)
		if en.sec.Type != elf.SHT_NOBITS {
			copy(data, en.sec.Data[en.off:en.off+n])
		}
		if maskLine && en.sp.line >= 0 && en.sp.line+2 <= int(n) {
			data[en.sp.line], data[en.sp.line+1] = 0, 0
		}
		for _, r := range s.relocsIn(en.sec, en.off, n) {
			rt, _ := s.f.Arch().Reloc(r.Type)
			for i := 0; i < rt.Size && int(r.Offset-en.off)+i < len(data); i++ {
				data[int(r.Offset-en.off)+i] = 0
			}
			id := s.ident(s.target(en.sec, r))
			if en.sec.Name == ".altinstructions" && r.Offset-en.off == 4 {
				// The replacement is exactly replacementlen bytes: an
				// empty one is not the fragment that happens to follow it.
				if repl, start, end, ok := s.replacement(en.sec, en.off, n); ok {
					id = "anon:" + s.anonSpan(repl, start, end)
				}
			}
			fmt.Fprintf(&b, "%d:%d:%s,", r.Offset-en.off, r.Type, id)
		}
		fmt.Fprintf(&b, "|%x", data)
		out = append(out, b.String())
	}
	sort.Strings(out)
	return out
}
