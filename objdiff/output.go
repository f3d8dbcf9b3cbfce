package objdiff

import (
	"debug/elf"
	"fmt"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/ksym"
)

// builder writes the output object: the included elements and anonymous
// sections, their relocations turned into normal relocations (inside the
// patch, or to vmlinux exports) or livepatch relocations, and the kept
// special-section entries.
type builder struct {
	d       *differ
	out     *elfobj.File
	secOf   map[*elem]*elfobj.Section
	symOf   map[*elem]*elfobj.Symbol
	anonOf  map[*elfobj.Section]*elfobj.Section
	undef   map[string]*elfobj.Symbol
	klpSym  map[string]*elfobj.Symbol
	rela    map[*elfobj.Section]*elfobj.Section
	klpRela map[klpRelaKey]*elfobj.Section
	exports map[string]uint32
}

func (d *differ) build() {
	b := &builder{
		d:       d,
		out:     elfobj.New(d.p.f.Machine),
		secOf:   map[*elem]*elfobj.Section{},
		symOf:   map[*elem]*elfobj.Symbol{},
		anonOf:  map[*elfobj.Section]*elfobj.Section{},
		undef:   map[string]*elfobj.Symbol{},
		klpSym:  map[string]*elfobj.Symbol{},
		rela:    map[*elfobj.Section]*elfobj.Section{},
		klpRela: map[klpRelaKey]*elfobj.Section{},
		exports: map[string]uint32{},
	}
	b.out.OSABI, b.out.Flags = d.p.f.OSABI, d.p.f.Flags
	type piece struct {
		from     *elfobj.Section
		off, len uint64
		to       *elfobj.Section
	}
	var pieces []piece
	for _, sec := range d.p.f.Sections {
		if d.anon[sec] {
			ns := b.copySection(sec, sec.Name, 0, sec.MemSize())
			b.anonOf[sec] = ns
			b.out.SectionSymbol(ns)
			pieces = append(pieces, piece{sec, 0, sec.MemSize(), ns})
		}
		for _, e := range d.p.bySec[sec] {
			if !e.included {
				continue
			}
			name := sec.Name
			if !e.whole() && sec.Flags&elf.SHF_EXECINSTR != 0 {
				name = ".text." + e.sym.Name
			}
			ns := b.copySection(sec, name, e.off, e.size)
			b.secOf[e] = ns
			for _, s := range append([]*elfobj.Symbol{e.sym}, e.aliases...) {
				ns := &elfobj.Symbol{Name: s.Name, Bind: s.Bind, Type: s.Type, Other: s.Other, Section: ns, Value: s.Value - e.off, Size: s.Size}
				b.out.AddSymbol(ns)
				if s == e.sym {
					b.symOf[e] = ns
				}
			}
			pieces = append(pieces, piece{sec, e.off, e.size, ns})
		}
	}
	for _, pc := range pieces {
		for _, r := range d.p.relocsIn(pc.from, pc.off, pc.len) {
			if !d.isLive(pc.from, r.Offset) {
				continue // replacement code no kept alternative uses
			}
			b.reloc(pc.from, r, pc.to, r.Offset-pc.off, true)
		}
	}
	b.specials()
	b.report()
	d.out = b.out
}

func (b *builder) copySection(sec *elfobj.Section, name string, off, size uint64) *elfobj.Section {
	ns := &elfobj.Section{Name: name, Type: sec.Type, Flags: sec.Flags &^ elf.SHF_GROUP, Addralign: sec.Addralign, Entsize: sec.Entsize}
	if sec.Type == elf.SHT_NOBITS {
		ns.Size = size
	} else {
		ns.Data = append([]byte(nil), sec.Data[off:off+size]...)
	}
	return b.out.AddSection(ns)
}

// isCall reports whether the relocation is the operand of a call or jump
// (as opposed to taking an address).
func isCall(from *elfobj.Section, r elfobj.Reloc) bool {
	switch elf.R_X86_64(r.Type) {
	case elf.R_X86_64_PLT32:
		return true
	case elf.R_X86_64_PC32:
		if r.Offset >= 1 && r.Offset <= uint64(len(from.Data)) {
			op := from.Data[r.Offset-1]
			if op == 0xe8 || op == 0xe9 {
				return true
			}
			if r.Offset >= 2 && from.Data[r.Offset-2] == 0x0f && op&0xf0 == 0x80 {
				return true
			}
		}
	}
	return false
}

// reloc converts relocation r of from (patched object) into one at off of
// to (output object). code says r comes from a carried function or data
// object, where a pointer to an existing function must keep pointing to
// the running kernel's original (it may outlive the patch); special
// entries instead must point into the new code.
func (b *builder) reloc(from *elfobj.Section, r elfobj.Reloc, to *elfobj.Section, off uint64, code bool) {
	d := b.d
	t := d.p.target(from, r)
	nr := elfobj.Reloc{Offset: off, Type: r.Type, Addend: t.delta}
	switch {
	case t.e != nil && t.e.included && !(code && t.e.fn && t.e.twin != nil && !t.e.cold && !isCall(from, r)):
		if eff := t.delta + b.trailing(from, r); eff < -8 || eff > int64(t.e.size) {
			// The element is carved out on its own: a reference
			// beyond it would land on whatever follows it in the
			// patch module.
			d.refuse(t.e.sym.Name, from.Name, fmt.Sprintf("relocation at %#x points to %s%+d, outside the %d bytes the patch carries of it", r.Offset, t.e.sym.Name, t.delta, t.e.size),
				"")
			return
		}
		nr.Symbol = b.symOf[t.e]
	case t.e != nil && t.e.twin != nil:
		b.external(to, nr, t.e.twin.sym)
		return
	case t.e != nil:
		d.refuse(t.e.sym.Name, from.Name, "reference to a symbol the patch neither carries nor finds in the running kernel", "")
		return
	case t.sec != nil && b.anonOf[t.sec] != nil:
		nr.Symbol = b.out.SectionSymbol(b.anonOf[t.sec])
		nr.Addend = t.off
	case t.sec != nil:
		d.refuse("", t.sec.Name, fmt.Sprintf("referenced from %s but cannot be carried by a livepatch", from.Name), "")
		return
	case t.undef != nil:
		if d.in.Provided[t.undef.Name] {
			nr.Symbol = b.undefined(t.undef.Name, t.undef)
			break
		}
		sym := t.undef
		if o := d.o.f.Symbol(sym.Name); o != nil && o.IsUndefined() {
			sym = o
		}
		b.external(to, nr, sym)
		return
	case t.other != nil && !t.other.IsLocal():
		b.external(to, nr, t.other)
		return
	default:
		d.refuse(symName(r.Symbol), from.Name, "relocation against a symbol objdiff does not model", "")
		return
	}
	b.relaFor(to).Relocs = append(b.relaFor(to).Relocs, nr)
}

// trailing is what a relocation's addend leaves out of the distance to
// its target: the 4 bytes of a PC-relative field in code.
func (b *builder) trailing(from *elfobj.Section, r elfobj.Reloc) int64 {
	if b.d.p.pcrel(r) && from.Flags&elf.SHF_EXECINSTR != 0 {
		return 4
	}
	return 0
}

func symName(s *elfobj.Symbol) string {
	if s == nil {
		return "<none>"
	}
	return s.String()
}

// external adds a reference to sym of the running kernel: a normal
// relocation for a vmlinux export, a livepatch relocation otherwise.
func (b *builder) external(to *elfobj.Section, nr elfobj.Reloc, sym *elfobj.Symbol) {
	bd, err := b.d.binding(sym)
	if err != nil {
		b.d.refuse(sym.Name, to.Name, "cannot locate in the running kernel: "+err.Error(), "")
		return
	}
	if bd.Kind == ksym.Exported {
		nr.Symbol = b.undefined(bd.Name, sym)
		b.exports[bd.Name] = bd.CRC
		b.relaFor(to).Relocs = append(b.relaFor(to).Relocs, nr)
		return
	}
	if bd.Object != ksym.Vmlinux && (specialFor(to.Name) != nil && to.Name != "__jump_table" && to.Name != ".static_call_sites" || to.Name == ".altinstr_replacement") {
		// The patch module's special sections are processed when it
		// loads; a module loaded later gets its livepatch relocations
		// written only then, too late for them. (Jump label and static
		// call keys: checkKey and inertEntry.)
		b.d.refuse(sym.Name, to.Name, fmt.Sprintf("a reference from %s to %s of module %s cannot be reached: the patch's %s entries are applied before the livepatch core resolves that module's symbols", to.Name, bd.Name, bd.Object, to.Name),
			"keep the changed code free of this construct (alternative, exception fixup, jump label) on the module's symbols")
		return
	}
	// The relocation section names the object whose loading makes the
	// symbol reachable: the symbol's own object, except for another
	// module's symbol reached from a module's code, which is relocated
	// as that code's module loads (it depends on the other one).
	secObj := bd.Object
	own := b.d.in.Object
	if own == "" {
		own = ksym.Vmlinux
	}
	if bd.Object != ksym.Vmlinux && bd.Object != own {
		if own == ksym.Vmlinux {
			b.d.refuse(sym.Name, to.Name, fmt.Sprintf("vmlinux code reaches %s of module %s, which may load after the patch or never", bd.Name, bd.Object), "reach it from code of a module that depends on "+bd.Object)
			return
		}
		secObj = own
	}
	name := fmt.Sprintf(".klp.sym.%s.%s,%d", bd.Object, bd.Name, bd.Sympos)
	ks := b.klpSym[name]
	if ks == nil {
		ks = &elfobj.Symbol{Name: name, Bind: elf.STB_GLOBAL, Type: sym.Type}
		if sym.IsLocal() {
			ks.Bind = elf.STB_LOCAL
		}
		ks.SetLivepatch()
		b.out.AddSymbol(ks)
		b.klpSym[name] = ks
	}
	nr.Symbol = ks
	// Keyed by the section, not its name: two carried pieces of one
	// section (two variables of .data..read_mostly) are two sections of
	// the same name, each with its own relocations.
	secName := ".klp.rela." + secObj + "." + to.Name
	rs := b.klpRela[klpRelaKey{secObj, to}]
	if rs == nil {
		rs = b.out.AddSection(&elfobj.Section{
			Name: secName, Type: elf.SHT_RELA, Flags: elf.SHF_ALLOC | elf.SHF_INFO_LINK | elfobj.SHFRelaLivepatch,
			Link: b.out.Symtab, Info: to, Addralign: 8, Entsize: 24,
		})
		b.klpRela[klpRelaKey{secObj, to}] = rs
	}
	rs.Relocs = append(rs.Relocs, nr)
	b.d.rep.KlpRelocs = append(b.d.rep.KlpRelocs, KlpReloc{
		Section: to.Name, Offset: nr.Offset, Type: b.out.Arch().RelocName(nr.Type), Addend: nr.Addend,
		Object: bd.Object, Symbol: bd.Name, Sympos: bd.Sympos,
	})
}

// klpRelaKey names the livepatch relocation section of one object's
// references from one output section.
type klpRelaKey struct {
	object string
	to     *elfobj.Section
}

func (b *builder) undefined(name string, like *elfobj.Symbol) *elfobj.Symbol {
	if s := b.undef[name]; s != nil {
		return s
	}
	s := b.out.AddSymbol(&elfobj.Symbol{Name: name, Bind: elf.STB_GLOBAL, Type: elf.STT_NOTYPE, Shndx: elf.SHN_UNDEF})
	if like != nil && like.Bind == elf.STB_WEAK && like.IsUndefined() {
		s.Bind = elf.STB_WEAK
	}
	b.undef[name] = s
	return s
}

func (b *builder) relaFor(to *elfobj.Section) *elfobj.Section {
	if rs := b.rela[to]; rs != nil {
		return rs
	}
	rs := b.out.AddRelocSection(to)
	b.rela[to] = rs
	return rs
}

// binding resolves sym of the original unit once.
func (d *differ) binding(sym *elfobj.Symbol) (ksym.Binding, error) {
	if c, ok := d.bindings[sym]; ok {
		return c.b, c.err
	}
	if d.in.Resolver == nil {
		return ksym.Binding{}, fmt.Errorf("no symbol source given")
	}
	bd, err := d.in.Resolver.Resolve(ksym.Ref{Symbol: sym})
	d.bindings[sym] = bindingOrErr{bd, err}
	return bd, err
}

// specials writes the kept entries of each special section, and the ORC
// unwind entries in lockstep with the kept ORC instruction pointers.
func (b *builder) specials() {
	d := b.d
	for _, sec := range d.p.f.Sections {
		ens := d.kept[sec]
		if len(ens) == 0 {
			continue
		}
		sort.Slice(ens, func(i, j int) bool { return ens[i].off < ens[j].off })
		ns := b.out.AddSection(&elfobj.Section{Name: sec.Name, Type: sec.Type, Flags: sec.Flags &^ elf.SHF_GROUP, Addralign: sec.Addralign, Entsize: sec.Entsize})
		var in []string
		seen := map[string]bool{}
		for i, en := range ens {
			ns.Data = append(ns.Data, sec.Data[en.off:en.off+en.size]...)
			for _, r := range d.p.relocsIn(sec, en.off, en.size) {
				at := r.Offset - en.off
				if en.sp.key >= 0 && at == uint64(en.sp.key) {
					b.checkKey(sec, en, r)
				}
				b.reloc(sec, r, ns, uint64(i)*en.size+at, false)
			}
			where := "section " + b.anchorName(en)
			if en.anchor != nil {
				where = en.anchor.sym.Name
			}
			if !seen[where] {
				seen[where] = true
				in = append(in, where)
			}
		}
		total := int(sec.MemSize() / ens[0].size)
		d.rep.Special = append(d.rep.Special, SpecialKept{Section: sec.Name, Kept: len(ens), Of: total, In: in})
		if sec.Name == ".orc_unwind_ip" {
			b.orcUnwind(ens)
		}
	}
	sort.Slice(d.rep.Special, func(i, j int) bool { return d.rep.Special[i].Section < d.rep.Special[j].Section })
}

func (b *builder) anchorName(en entry) string {
	for _, r := range b.d.p.relocsIn(en.sec, en.off, 1) {
		if t := b.d.p.target(en.sec, r); t.sec != nil {
			return t.sec.Name
		}
	}
	return "?"
}

func (b *builder) orcUnwind(ips []entry) {
	d := b.d
	sec := d.p.f.Section(".orc_unwind")
	size := uint64(d.in.Layouts[".orc_unwind"])
	if sec == nil || size == 0 {
		d.refuse("", ".orc_unwind", "ORC instruction pointers without unwind entries", "")
		return
	}
	ns := b.out.AddSection(&elfobj.Section{Name: sec.Name, Type: sec.Type, Flags: sec.Flags, Addralign: sec.Addralign, Entsize: sec.Entsize})
	for _, en := range ips {
		at := uint64(en.index) * size
		if at+size > uint64(len(sec.Data)) {
			d.refuse("", ".orc_unwind", fmt.Sprintf("has no entry %d for .orc_unwind_ip", en.index), "")
			return
		}
		ns.Data = append(ns.Data, sec.Data[at:at+size]...)
	}
	d.rep.Special = append(d.rep.Special, SpecialKept{Section: sec.Name, Kept: len(ips), Of: int(sec.MemSize() / size), In: []string{"(lockstep with .orc_unwind_ip)"}})
}

// checkKey refuses a jump label whose key a module defines: module keys
// are resolved only after the patch module's jump labels are
// initialised. (Tracepoint keys and static call keys of modules never
// get here: keepEntries leaves their entries out.)
func (b *builder) checkKey(sec *elfobj.Section, en entry, r elfobj.Reloc) {
	d := b.d
	key, obj, ok := d.moduleKey(sec, r)
	if !ok {
		return
	}
	fn := "?"
	if en.anchor != nil {
		fn = en.anchor.sym.Name
	}
	what, hint := "jump label", "use static_key_enabled() instead of static_branch_*()"
	if sec.Name == ".static_call_sites" {
		what, hint = "static call", "call through the function pointer instead of static_call()"
	}
	d.refuse(fn, sec.Name, fmt.Sprintf("%s key %s lives in module %s, which the patch's %ss cannot reach", what, key, obj, what), hint)
}

// moduleKey returns the key a jump label or static call entry names
// (relocation r of its key field) when it lives in a module rather than
// vmlinux or the patch itself.
func (d *differ) moduleKey(sec *elfobj.Section, r elfobj.Reloc) (key, object string, ok bool) {
	t := d.p.target(sec, r)
	var sym *elfobj.Symbol
	switch {
	case t.e != nil && t.e.twin != nil && !t.e.included:
		sym = t.e.twin.sym
	case t.undef != nil && !d.in.Provided[t.undef.Name]:
		sym = t.undef
	default:
		return "", "", false
	}
	bd, err := d.binding(sym)
	if err != nil || bd.Kind != ksym.Livepatch || bd.Object == ksym.Vmlinux {
		return "", "", false
	}
	return bd.Name, bd.Object, true
}

// inertEntry reports whether en, an entry pointing into carried code, is
// left out of the patch on purpose, and records why: a tracepoint's jump
// label whose key lives in a module stays in its compiled default (the
// tracepoint does not fire in the patched function), and a tracepoint's
// static call site whose key lives in a module keeps calling the module's
// trampoline, which static_call_update() keeps current. Other jump labels
// and static calls on module keys are refused (checkKey), as kpatch and
// klp-build do. The module's keys cannot be
// reached from the patch's special sections: they are initialised before
// the livepatch core resolves symbols of a module loaded later.
func (d *differ) inertEntry(sec *elfobj.Section, en entry) bool {
	if en.sp.key < 0 {
		return false
	}
	for _, r := range d.p.relocsIn(sec, en.off, en.size) {
		if r.Offset-en.off != uint64(en.sp.key) {
			continue
		}
		key, obj, ok := d.moduleKey(sec, r)
		if !ok {
			return false
		}
		fn := "?"
		if en.anchor != nil {
			fn = en.anchor.sym.Name
		}
		switch {
		case sec.Name == ".static_call_sites" && strings.HasPrefix(key, "__SCK__tp_func_"):
			d.ignore(fn, sec.Name, "static call site", fmt.Sprintf("key %s lives in module %s: the tracepoint's call is not patched in place; it goes through the module's trampoline, which static_call_update() keeps current", key, obj))
			d.warn("%s: tracepoint static call with key %s of module %s goes through its trampoline", fn, key, obj)
			return true
		case strings.HasPrefix(key, "__tracepoint_"):
			tp := strings.TrimPrefix(key, "__tracepoint_")
			d.ignore(fn, sec.Name, "tracepoint", fmt.Sprintf("key %s lives in module %s: tracepoint %s is inert (never fires) in the patched function", key, obj, tp))
			d.warn("%s: tracepoint %s of module %s is inert in the patched function", fn, tp, obj)
			return true
		}
		return false
	}
	return false
}

// report fills the lists derived from the output.
func (b *builder) report() {
	d := b.d
	rep := d.rep
	for _, e := range d.p.elems {
		if !e.included {
			continue
		}
		switch {
		case e.gen:
			rep.Fresh = append(rep.Fresh, e.sym.Name)
		case e.status == isNew:
			rep.New = append(rep.New, NewSymbol{Name: e.sym.Name, Function: e.fn, Global: !e.sym.IsLocal(), Section: b.secOf[e].Name})
		case e.fn && e.status == changed && !e.cold && hasFentry(e.twin):
			f := Func{Name: e.twin.sym.Name, Symbol: e.sym.Name, Section: b.secOf[e].Name, Reasons: e.reasons}
			bd, err := d.in.Resolver.Locate(ksym.Ref{Symbol: e.twin.sym})
			if err != nil {
				d.refuse(f.Name, e.sec.Name, "cannot locate the function to patch: "+err.Error(), "")
			}
			f.Sympos = bd.Sympos
			rep.Changed = append(rep.Changed, f)
		default:
			rep.Helpers = append(rep.Helpers, e.sym.Name)
		}
	}
	names := make([]string, 0, len(b.exports))
	for n := range b.exports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rep.Exports = append(rep.Exports, ExportUse{Name: n, CRC: b.exports[n]})
	}
	if len(rep.Refusals) > 0 {
		return
	}
	if err := b.out.Validate(); err != nil {
		d.refuse("", "", "internal error: the output object is invalid: "+strings.TrimPrefix(err.Error(), "elfobj: "), "")
	}
}
