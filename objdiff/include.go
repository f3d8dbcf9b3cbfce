package objdiff

import (
	"debug/elf"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// include selects what the output carries: changed functions, new
// functions and data, and, transitively, what they reference that the
// running kernel does not have (new symbols, fresh compiler-generated
// statics, .cold fragments, string literals and other anonymous data).
func (d *differ) include() {
	d.anon = map[*elfobj.Section]bool{}
	var queue []*elem
	add := func(e *elem) {
		if !e.included {
			e.included = true
			queue = append(queue, e)
		}
	}
	for _, e := range d.p.elems {
		switch {
		case e.status == changed:
			add(e)
		case e.status == isNew && !e.gen && codeOrData(e.sec.Name):
			add(e)
		case e.status == isNew && !e.gen:
			d.warn("new %s %s in section %s is not carried (only code and data are)", kindName(e), e.sym.Name, e.sec.Name)
			d.ignore(e.sym.Name, e.sec.Name, "new "+kindName(e), "only code and data are carried by a livepatch")
		}
	}
	var anonQueue []*elfobj.Section
	follow := func(from *elfobj.Section, rs []elfobj.Reloc) {
		for _, r := range rs {
			t := d.p.target(from, r)
			switch {
			case t.e != nil:
				te := t.e
				if !te.included && (te.twin == nil || te.cold) {
					add(te)
				}
			case t.sec != nil:
				if !d.anon[t.sec] && carriable(t.sec) {
					d.anon[t.sec] = true
					if !replacementPool(t.sec) {
						anonQueue = append(anonQueue, t.sec)
					}
				}
				if auxPool(t.sec) && from != t.sec && from.Flags&elf.SHF_EXECINSTR != 0 {
					d.markAux(t.sec, t.at)
				}
			}
		}
	}
	d.drain = func() {
		for len(queue) > 0 || len(anonQueue) > 0 {
			if len(queue) > 0 {
				e := queue[0]
				queue = queue[1:]
				follow(e.sec, d.p.relocsIn(e.sec, e.off, e.size))
				continue
			}
			s := anonQueue[0]
			anonQueue = anonQueue[1:]
			follow(s, d.p.relocs[s])
		}
	}
	d.follow = follow
	d.drain()
}

// replacementPool reports whether s holds pieces of code each used by
// one alternative: replacement code, which the kernel copies over an
// alternative's original instructions when the patch loads, used only
// by its .altinstructions entry (markLive), and out-of-line code that an
// original instruction jumps to (auxPool, markAux). Its relocations are
// followed piece by piece, as the code using a piece is carried, not for
// the whole section.
func replacementPool(s *elfobj.Section) bool {
	return s.Name == ".altinstr_replacement" || auxPool(s)
}

// auxPool reports whether s holds static_cpu_has()'s run-time tests:
// pieces of code in .altinstr_aux, each reached only by a jump from the
// function using it (until alternatives replace that jump).
func auxPool(s *elfobj.Section) bool {
	return s.Name == ".altinstr_aux"
}

// markAux records that carried code jumps to the piece of out-of-line
// code at off of sec (auxPool), and follows that piece's relocations:
// back into the function that uses it, and to the CPU's feature bits.
// The other pieces are copied but never run.
func (d *differ) markAux(sec *elfobj.Section, off int64) {
	if off < 0 || off >= int64(len(sec.Data)) {
		return
	}
	for _, r := range d.live[sec] {
		if r[0] == uint64(off) {
			return
		}
	}
	d.addLive(sec, uint64(off), uint64(d.p.auxEnd(sec, off)))
}

// markLive records that the kept .altinstructions entry en uses its
// replacement code (side.replacement), and follows that code's
// relocations.
func (d *differ) markLive(sec *elfobj.Section, en entry) {
	repl, start, end, ok := d.p.replacement(sec, en.off, en.size)
	if !ok || !replacementPool(repl) {
		return
	}
	d.addLive(repl, uint64(start), uint64(end))
}

// addLive records [start, end) of the pool sec as code the patch uses,
// and follows its relocations.
func (d *differ) addLive(sec *elfobj.Section, start, end uint64) {
	if d.live == nil {
		d.live = map[*elfobj.Section][][2]uint64{}
	}
	d.live[sec] = append(d.live[sec], [2]uint64{start, end})
	d.follow(sec, d.p.relocsIn(sec, start, end-start))
}

// isLive reports whether off of a replacement pool is in code a kept
// alternative uses; every offset of any other section is.
func (d *differ) isLive(sec *elfobj.Section, off uint64) bool {
	if !replacementPool(sec) {
		return true
	}
	for _, r := range d.live[sec] {
		if off >= r[0] && off < r[1] {
			return true
		}
	}
	return false
}

// carriable reports whether an anonymous section may be copied into the
// patch (strings, constants, replacement code), as opposed to metadata
// that must not be duplicated.
func carriable(s *elfobj.Section) bool {
	if s.Flags&elf.SHF_ALLOC == 0 || specialFor(s.Name) != nil {
		return false
	}
	for _, p := range []string{"__ksymtab", "___ksymtab", "__kcrctab", ".modinfo", "__param", ".discard", ".init.", ".exit.", "__tracepoints", "_ftrace_events", ".gnu.linkonce"} {
		if strings.HasPrefix(s.Name, p) {
			return false
		}
	}
	return true
}

// keepEntries keeps the special-section entries that point into what the
// output carries, following what they reference in turn (a kept
// alternative brings its replacement code, whose own entries may then be
// kept), until nothing more is kept.
func (d *differ) keepEntries() {
	d.kept = map[*elfobj.Section][]entry{}
	done := map[[2]uint64]bool{}
	for more := true; more; {
		more = false
		for _, sec := range d.p.f.Sections {
			sp := specialFor(sec.Name)
			if sp == nil || sec.Name == ".orc_unwind" {
				continue
			}
			size := uint64(d.in.Layouts[sec.Name])
			for off := uint64(0); off+size <= sec.MemSize() && size > 0; off += size {
				k := [2]uint64{uint64(sec.Index), off}
				if done[k] {
					continue
				}
				en, ok := d.entryAt(sec, sp, off, size)
				if !ok {
					continue
				}
				done[k] = true
				if d.inertEntry(sec, en) {
					continue
				}
				d.kept[sec] = append(d.kept[sec], en)
				d.follow(sec, d.p.relocsIn(sec, off, size))
				if sec.Name == ".altinstructions" {
					d.markLive(sec, en)
				}
				d.drain()
				more = true
			}
		}
	}
}

// entryAt returns the entry at off of sec when it points into something
// the output carries.
func (d *differ) entryAt(sec *elfobj.Section, sp *special, off, size uint64) (entry, bool) {
	for _, r := range d.p.relocsIn(sec, off, 1) {
		t := d.p.target(sec, r)
		switch {
		case t.e != nil && t.e.included:
			return entry{sec: sec, sp: sp, index: int(off / size), off: off, size: size, anchor: t.e, at: t.delta}, true
		case t.sec != nil && d.anon[t.sec] && t.off >= 0 && d.isLive(t.sec, uint64(t.off)):
			return entry{sec: sec, sp: sp, index: int(off / size), off: off, size: size, at: t.off}, true
		}
	}
	return entry{}, false
}
