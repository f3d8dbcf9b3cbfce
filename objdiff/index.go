package objdiff

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// elem is one function or data object of an object file: a FUNC or OBJECT
// symbol and the bytes it covers.
type elem struct {
	sym     *elfobj.Symbol
	aliases []*elfobj.Symbol
	sec     *elfobj.Section
	off     uint64
	size    uint64
	key     string // correlation key: the name without compiler numbering
	id      string // unique within its side
	fn      bool
	gen     bool // compiler-generated static: never correlated
	cold    bool // a .cold fragment of its parent's body
	part    bool // a .part piece split off its parent
	twin    *elem
	side    *side

	// set on the patched side
	status   status
	reasons  []string
	included bool
}

type status int

const (
	unchanged status = iota
	changed
	isNew
)

// whole reports whether e is the only thing in its section.
func (e *elem) whole() bool {
	return e.off == 0 && e.size == e.sec.MemSize() && len(e.side.bySec[e.sec]) == 1
}

// side is the index of one object.
type side struct {
	orig   bool
	f      *elfobj.File
	elems  []*elem
	bySec  map[*elfobj.Section][]*elem // sorted by offset
	bySym  map[*elfobj.Symbol]*elem
	relocs map[*elfobj.Section][]elfobj.Reloc // by target section, sorted by offset
	byKey  map[string][]*elem
	// referrers of each elem: keys of the elements whose relocations
	// point to it.
	referrers map[*elem]map[string]bool
	entries   map[*elem][]entry // special-section entries anchored in an elem
	refs      map[*elfobj.Section][]int64
	codeRefs  map[*elfobj.Section][]int64 // places other code jumps to (auxEnd)
}

// entry is one entry of a special section.
type entry struct {
	sec    *elfobj.Section
	sp     *special
	index  int
	off    uint64 // in sec
	size   uint64
	anchor *elem // the element the first field points into (may be nil)
	at     int64 // offset of the anchor target within anchor
}

func newSide(f *elfobj.File, orig bool, lay Layouts) (*side, error) {
	s := &side{
		orig:      orig,
		f:         f,
		bySec:     map[*elfobj.Section][]*elem{},
		bySym:     map[*elfobj.Symbol]*elem{},
		relocs:    map[*elfobj.Section][]elfobj.Reloc{},
		byKey:     map[string][]*elem{},
		referrers: map[*elem]map[string]bool{},
		entries:   map[*elem][]entry{},
	}
	f.Renumber()
	for _, sec := range f.Sections {
		if sec.IsReloc() && sec.Info != nil {
			s.relocs[sec.Info] = append(s.relocs[sec.Info], sec.Relocs...)
		}
	}
	for sec, rs := range s.relocs {
		if !sort.SliceIsSorted(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset }) {
			rs = append([]elfobj.Reloc(nil), rs...)
			sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
			s.relocs[sec] = rs
		}
	}
	at := map[[2]uint64]*elem{}
	for _, sym := range f.Symbols {
		if sym.Section == nil || (sym.Type != elf.STT_FUNC && sym.Type != elf.STT_OBJECT) || sym.Section.Flags&elf.SHF_ALLOC == 0 || specialFor(sym.Section.Name) != nil {
			continue
		}
		k := [2]uint64{uint64(sym.Section.Index), sym.Value}
		if e := at[k]; e != nil && e.size == sym.Size {
			e.aliases = append(e.aliases, sym)
			s.bySym[sym] = e
			continue
		}
		e := &elem{sym: sym, sec: sym.Section, off: sym.Value, size: sym.Size, fn: sym.Type == elf.STT_FUNC, side: s}
		e.key = stripNumbering(sym.Name)
		e.gen = generated(e.key, sym)
		e.cold = strings.HasSuffix(e.key, ".cold")
		e.part = strings.Contains(e.key, ".part")
		e.id = fmt.Sprintf("%s#%d", sym.Name, sym.Index)
		at[k] = e
		s.elems = append(s.elems, e)
		s.bySym[sym] = e
		s.bySec[sym.Section] = append(s.bySec[sym.Section], e)
		s.byKey[e.key] = append(s.byKey[e.key], e)
	}
	for _, es := range s.bySec {
		sort.SliceStable(es, func(i, j int) bool { return es[i].off < es[j].off })
	}
	for _, e := range s.elems {
		for _, r := range s.relocsIn(e.sec, e.off, e.size) {
			if t := s.target(e.sec, r); t.e != nil && t.e != e {
				m := s.referrers[t.e]
				if m == nil {
					m = map[string]bool{}
					s.referrers[t.e] = m
				}
				m[e.key] = true
			}
		}
	}
	if err := s.indexEntries(lay); err != nil {
		return nil, err
	}
	return s, nil
}

// relocsIn returns the relocations applying to [off, off+size) of sec.
func (s *side) relocsIn(sec *elfobj.Section, off, size uint64) []elfobj.Reloc {
	rs := s.relocs[sec]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= off })
	j := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= off+size })
	return rs[i:j]
}

// elemAt returns the element of sec containing off, else the nearest one
// before it, else the first one after it (references with a trailing
// immediate point a few bytes before their object).
func (s *side) elemAt(sec *elfobj.Section, off int64) *elem {
	es := s.bySec[sec]
	if len(es) == 0 {
		return nil
	}
	i := sort.Search(len(es), func(i int) bool { return int64(es[i].off) > off })
	if i == 0 {
		return es[0]
	}
	return es[i-1]
}

// target is what a relocation points to.
type target struct {
	e     *elem           // an element
	delta int64           // S+A relative to the element's start
	sec   *elfobj.Section // an anonymous section (no elements), with off
	off   int64
	// at is the place in sec the reference means: off, or off+4 for a
	// PC-relative field in code, whose addend counts from the field's end.
	at    int64
	undef *elfobj.Symbol // an undefined symbol (A in delta)
	other *elfobj.Symbol // a symbol in a special or unmodelled place
}

func (s *side) target(from *elfobj.Section, r elfobj.Reloc) target {
	sym := r.Symbol
	if sym == nil {
		return target{}
	}
	if e := s.bySym[sym]; e != nil {
		return target{e: e, delta: int64(sym.Value-e.off) + r.Addend}
	}
	if sym.Section == nil {
		if sym.IsUndefined() {
			return target{undef: sym, delta: r.Addend}
		}
		return target{other: sym, delta: r.Addend}
	}
	off := int64(sym.Value) + r.Addend
	probe := off
	if s.pcrel(r) && from.Flags&elf.SHF_EXECINSTR != 0 {
		probe += 4
	}
	if e := s.elemAt(sym.Section, probe); e != nil {
		return target{e: e, delta: off - int64(e.off)}
	}
	if sym.Type == elf.STT_SECTION || sym.Type == elf.STT_NOTYPE {
		return target{sec: sym.Section, off: off, at: probe}
	}
	return target{other: sym, delta: r.Addend}
}

func (s *side) pcrel(r elfobj.Reloc) bool {
	rt, ok := s.f.Arch().Reloc(r.Type)
	return ok && rt.PCRel
}

// ident is a relocation target named independently of the object's
// layout and numbering, for comparing the two sides.
func (s *side) ident(t target) string {
	switch {
	case t.e != nil:
		e := t.e
		d := ":" + strconv.FormatInt(t.delta, 10)
		switch {
		case e.gen:
			return "gen:" + e.key + d
		case s.orig:
			return "e:" + e.id + d
		case e.twin != nil:
			return "e:" + e.twin.id + d
		}
		return "new:" + e.id + d
	case t.sec != nil:
		return "anon:" + s.anonIdent(t.sec, t.at)
	case t.undef != nil:
		return "u:" + t.undef.Name + ":" + strconv.FormatInt(t.delta, 10)
	case t.other != nil:
		return "o:" + t.other.Name + ":" + strconv.FormatInt(t.delta, 10)
	}
	return "none"
}

// anonIdent names a place in a section without symbols (strings,
// replacement code, constants) by what is there: for strings the string;
// otherwise the bytes and references from the place to the next place
// anything refers to (the extent of one replacement or constant).
func (s *side) anonIdent(sec *elfobj.Section, off int64) string {
	if sec.Flags&elf.SHF_STRINGS != 0 || off < 0 || off >= int64(len(sec.Data)) {
		return anonIdent(sec, off)
	}
	return s.anonSpan(sec, off, s.nextRef(sec, off))
}

// anonSpan names the bytes [off, end) of sec and the references from
// them.
func (s *side) anonSpan(sec *elfobj.Section, off, end int64) string {
	var b strings.Builder
	b.WriteString(stripNumbering(sec.Name) + ":" + hex.EncodeToString(sec.Data[off:end]))
	for _, r := range s.relocsIn(sec, uint64(off), uint64(end-off)) {
		t := s.target(sec, r)
		if t.sec == sec {
			fmt.Fprintf(&b, ",%d:self%+d", r.Offset-uint64(off), t.off-off)
			continue
		}
		fmt.Fprintf(&b, ",%d:%s", r.Offset-uint64(off), s.ident(t))
	}
	return b.String()
}

// nextRef returns the first offset after off in sec that a relocation
// of the loaded object refers to (or the section's end). References from
// sections that are not loaded (debug information) delimit nothing the
// kernel reads: the compiler's variable locations come and go with any
// change of the code around them.
func (s *side) nextRef(sec *elfobj.Section, off int64) int64 {
	if s.refs == nil {
		s.refs = s.refPlaces(func(from *elfobj.Section, to *elfobj.Symbol) bool {
			return from.Flags&elf.SHF_ALLOC != 0 && len(s.bySec[to.Section]) == 0
		})
	}
	end := placeAfter(s.refs[sec], off, int64(len(sec.Data)))
	if end-off > 256 {
		end = off + 256
	}
	return end
}

// auxEnd returns the end of the piece of out-of-line code in sec that
// starts at off: the next place in sec that code of another section
// refers to, or the section's end. static_cpu_has() puts one such piece
// (its run-time test) in .altinstr_aux for each use, reached only from
// the code of the function using it.
func (s *side) auxEnd(sec *elfobj.Section, off int64) int64 {
	if s.codeRefs == nil {
		s.codeRefs = s.refPlaces(func(from *elfobj.Section, to *elfobj.Symbol) bool {
			return from.Flags&elf.SHF_EXECINSTR != 0 && to.Section != from
		})
	}
	return placeAfter(s.codeRefs[sec], off, int64(len(sec.Data)))
}

// refPlaces returns, per section, the sorted places that the relocations
// keep selects refer to: S+A, 4 bytes on for a PC-relative field in
// code (its addend counts from the field's end).
func (s *side) refPlaces(keep func(from *elfobj.Section, to *elfobj.Symbol) bool) map[*elfobj.Section][]int64 {
	places := map[*elfobj.Section][]int64{}
	for from, rs := range s.relocs {
		for _, r := range rs {
			to := r.Symbol
			if to == nil || to.Section == nil || !keep(from, to) {
				continue
			}
			o := int64(to.Value) + r.Addend
			if s.pcrel(r) && from.Flags&elf.SHF_EXECINSTR != 0 {
				o += 4
			}
			places[to.Section] = append(places[to.Section], o)
		}
	}
	for _, v := range places {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	}
	return places
}

// placeAfter returns the first of the sorted places after off, or end
// when none is before it.
func placeAfter(places []int64, off, end int64) int64 {
	i := sort.Search(len(places), func(i int) bool { return places[i] > off })
	if i < len(places) && places[i] < end {
		return places[i]
	}
	return end
}

// anonIdent names a place in a section without symbols by its contents.
func anonIdent(sec *elfobj.Section, off int64) string {
	name := stripNumbering(sec.Name)
	data := sec.Data
	if sec.Flags&elf.SHF_STRINGS != 0 && off >= -8 && off <= int64(len(data)) {
		// PC-relative references point up to a few bytes before the
		// string: take the string at or after the place, and how far.
		o := off
		if o < 0 {
			o = 0
		}
		start := bytes.LastIndexByte(data[:o], 0) + 1
		if o < int64(len(data)) && data[o] == 0 && o > 0 && start == int(o) {
			start = int(o)
		}
		end := bytes.IndexByte(data[start:], 0)
		if end < 0 {
			end = len(data) - start
		}
		return fmt.Sprintf("str:%q%+d", data[start:start+end], off-int64(start))
	}
	if off < 0 || off > int64(len(data)) {
		return fmt.Sprintf("%s@%d", name, off)
	}
	return name + ":" + hex.EncodeToString(data[off:off+int64(len(data[off:]))])
}

// stripNumbering removes the numbers the compiler appends to names
// ("foo.isra.0" → "foo.isra", "count.12" → "count", "foo.cold" stays),
// and the __COUNTER__ value of __UNIQUE_ID() names
// ("__UNIQUE_ID_ddebug412" → "__UNIQUE_ID_ddebug"): every use of
// __UNIQUE_ID() above a change shifts the counter of those below it.
// The same holds for the counter and line number in the names of BTF ids
// ("__BTF_ID__func__foo__12345" → "__BTF_ID__func__foo") and initcalls
// ("__initcall__kmod_proc__12_345_fn6" → "__initcall__kmod_proc__fn6").
func stripNumbering(name string) string {
	switch {
	case strings.HasPrefix(name, "__BTF_ID__"):
		name = btfID.ReplaceAllString(name, "")
	case strings.HasPrefix(name, "__initcall__"):
		name = initcallID.ReplaceAllString(name, "__")
	}
	if rest, ok := strings.CutPrefix(name, uniqueID); ok {
		head, tail, dot := strings.Cut(rest, ".")
		name = uniqueID + strings.TrimRight(head, "0123456789")
		if dot {
			name += "." + tail
		}
	}
	if !strings.Contains(name, ".") {
		return name
	}
	parts := strings.Split(name, ".")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ".")
}

// uniqueID starts the names __UNIQUE_ID(prefix) makes: prefix followed
// by the value of __COUNTER__.
const uniqueID = "__UNIQUE_ID_"

// generatedNames are statics the compiler or kernel macros create for one
// use site; their state belongs to that site, so they are never
// correlated and a patch gets fresh ones.
var generatedNames = []string{"__key", "__warned", "__already_done", "__func__", "_rs", "CSWTCH", "__print_once", "__print_once_", "descriptor", "__UNIQUE_ID_ddebug", "__msg", "__flags", "__tpstrtab", "__ddebug"}

func generated(key string, sym *elfobj.Symbol) bool {
	if !sym.IsLocal() {
		return false
	}
	switch sym.Section.Name {
	case ".data.once", "__dyndbg", "__verbose":
		return true
	}
	if strings.HasPrefix(sym.Section.Name, ".bss.__key") || strings.HasPrefix(sym.Section.Name, ".data.__key") {
		return true
	}
	for _, g := range generatedNames {
		if key == g || strings.HasPrefix(key, g+".") || (strings.HasPrefix(g, "__UNIQUE_ID_") && strings.HasPrefix(key, g)) {
			return true
		}
	}
	return false
}

// indexEntries splits the special sections into entries and anchors each
// in the element its first field points into.
func (s *side) indexEntries(lay Layouts) error {
	for _, sec := range s.f.Sections {
		sp := specialFor(sec.Name)
		if sp == nil || sec.Name == ".orc_unwind" {
			continue
		}
		size := lay[sec.Name]
		if size <= 0 {
			return fmt.Errorf("special section %s: entry size unknown (layout of the target tree missing)", sec.Name)
		}
		if sec.MemSize()%uint64(size) != 0 {
			return fmt.Errorf("special section %s: %d bytes is not a multiple of its entry size %d", sec.Name, sec.MemSize(), size)
		}
		for i := 0; uint64(i*size) < sec.MemSize(); i++ {
			en := entry{sec: sec, sp: sp, index: i, off: uint64(i * size), size: uint64(size)}
			for _, r := range s.relocsIn(sec, en.off, 1) {
				t := s.target(sec, r)
				if t.e != nil {
					en.anchor, en.at = t.e, t.delta
				}
			}
			if en.anchor != nil {
				s.entries[en.anchor] = append(s.entries[en.anchor], en)
			}
		}
	}
	return nil
}

// replacement is the replacement code of the .altinstructions entry at
// off (size bytes) of sec: the section and byte range [start, end) its
// second field points to, replacementlen (the entry's last byte, in
// struct alt_instr of Linux 6.1 to 6.12) long. ok is false when the field
// points nowhere in a section without symbols.
func (s *side) replacement(sec *elfobj.Section, off, size uint64) (repl *elfobj.Section, start, end int64, ok bool) {
	for _, r := range s.relocsIn(sec, off+4, 4) {
		t := s.target(sec, r)
		if t.sec == nil || t.off < 0 {
			continue
		}
		end := min(t.off+int64(sec.Data[off+size-1]), int64(t.sec.MemSize()))
		return t.sec, t.off, end, true
	}
	return nil, 0, 0, false
}
