package objdiff

import "sort"

// correlate pairs the elements of the original and patched objects:
// globals by name, locals by name modulo compiler numbering, and
// same-named static locals by the functions that reference them.
// Compiler-generated statics are never paired.
func correlate(o, p *side) {
	keys := make([]string, 0, len(p.byKey))
	for k := range p.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps, os := p.byKey[k], o.byKey[k]
		if len(os) == 0 {
			continue
		}
		pair := func(a, b *elem) { a.twin, b.twin = b, a }
		var pfree, ofree []*elem
		for _, e := range ps {
			if !e.gen {
				pfree = append(pfree, e)
			}
		}
		for _, e := range os {
			if !e.gen {
				ofree = append(ofree, e)
			}
		}
		if len(pfree) == 1 && len(ofree) == 1 {
			pair(pfree[0], ofree[0])
			continue
		}
		// Several: globals by exact name, then statics by referrers.
		for _, pe := range pfree {
			for _, oe := range ofree {
				if oe.twin == nil && pe.twin == nil && !pe.sym.IsLocal() && pe.sym.Name == oe.sym.Name {
					pair(pe, oe)
				}
			}
		}
		for _, pe := range pfree {
			if pe.twin != nil {
				continue
			}
			var match []*elem
			for _, oe := range ofree {
				if oe.twin == nil && overlaps(p.referrers[pe], o.referrers[oe]) {
					match = append(match, oe)
				}
			}
			if len(match) == 1 {
				pair(pe, match[0])
			}
		}
		// What is left is paired in order of appearance, as the compiler
		// numbers clones (foo.constprop.0, foo.constprop.1) in order.
		var pl, ol []*elem
		for _, e := range pfree {
			if e.twin == nil {
				pl = append(pl, e)
			}
		}
		for _, e := range ofree {
			if e.twin == nil {
				ol = append(ol, e)
			}
		}
		if len(pl) == len(ol) {
			for i := range pl {
				pair(pl[i], ol[i])
			}
		}
	}
	for _, e := range p.elems {
		if e.twin == nil {
			e.status = isNew
		}
	}
}

func overlaps(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}
