package klpmod

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// klpSym is a livepatch symbol the final module needs, standing in the
// link as a placeholder.
type klpSym struct {
	elfobj.KlpSym // its name in the final module: String()
	// SecObject is the object of the .klp.rela section: Object, or the
	// module whose code reaches another module's symbol.
	SecObject string
	Type      elf.SymType
	Bind      elf.SymBind
}

// prepared is one unit's object made ready for the kbuild link.
type prepared struct {
	index   int
	unit    Unit
	obj     *elfobj.File
	funcs   []Func            // klp_funcs, NewFunc set to the alias
	cbs     []Callback        // callbacks the unit declared
	states  []State           // klp_states the unit declared
	force   []string          // functions marked force-unsafe
	ignore  []string          // functions not to redirect
	holder  map[string]klpSym // placeholder name -> livepatch symbol
	hidden  map[string]bool   // global hidden aliases added
	aliasOf map[*elfobj.Symbol]string
	relocs  map[string][]KlpReloc // by placeholder, for the report
}

// Marker name prefixes (include/kelp/patch.h).
const (
	markerCallback = "__kelp_cb_"
	markerState    = "__kelp_state_"
	markerForce    = "__kelp_force_unsafe_"
	markerIgnore   = "__kelp_ignore_function_"
)

// ProvidedSymbols are the globals the generated init file defines for the
// patch's own code (kelp/patch.h's kelp_get_state uses __kelp_patch): the
// build must pass them to objdiff as Input.Provided, so references to
// them stay inside the module.
var ProvidedSymbols = []string{"__kelp_patch"}

// callbackKinds are the klp_callbacks members, in the order the kernel
// runs them.
var callbackKinds = []string{"pre_patch", "post_patch", "pre_unpatch", "post_unpatch"}

// prepare copies the unit's object and makes it linkable: aliases for the
// new functions and markers, placeholders for livepatch relocations.
// With stripObj, objtool's sections are left to the module link.
func prepare(i int, u Unit, stripObj bool) (*prepared, error) {
	rep := u.Diff.Report
	data, err := u.Diff.Object.Encode()
	if err != nil {
		return nil, fmt.Errorf("unit %s: encode: %w", rep.Unit, err)
	}
	f, err := elfobj.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", rep.Unit, err)
	}
	if stripObj {
		stripObjtool(f)
	}
	p := &prepared{index: i, unit: u, obj: f, holder: map[string]klpSym{}, hidden: map[string]bool{}, aliasOf: map[*elfobj.Symbol]string{}, relocs: map[string][]KlpReloc{}}
	for _, c := range rep.Changed {
		sym := definedFunc(f, c.Symbol)
		if sym == nil {
			return nil, fmt.Errorf("unit %s: the new version of %s (%s) is not defined in the object", rep.Unit, c.Name, c.Symbol)
		}
		p.funcs = append(p.funcs, Func{Object: u.Object, Unit: rep.Unit, OldName: c.Name, Sympos: c.Sympos, NewFunc: p.alias(sym)})
	}
	if err := p.markers(); err != nil {
		return nil, err
	}
	p.funcs = slices.DeleteFunc(p.funcs, func(fn Func) bool { return slices.Contains(p.ignore, fn.OldName) })
	if err := p.placeholders(); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("unit %s: prepared object: %w", rep.Unit, err)
	}
	return p, nil
}

func definedFunc(f *elfobj.File, name string) *elfobj.Symbol {
	for _, s := range f.Symbols {
		if s.Name == name && s.Section != nil && s.Type == elf.STT_FUNC {
			return s
		}
	}
	return nil
}

// alias adds a global hidden symbol for sym, unique in the module, and
// returns its name. The original symbol stays as it is, so backtraces
// still show the function's own name.
func (p *prepared) alias(sym *elfobj.Symbol) string {
	if name, ok := p.aliasOf[sym]; ok {
		return name
	}
	// A C identifier: compiler clones are named "foo.part.0".
	base := fmt.Sprintf("__kelp_u%d_%s", p.index, strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, sym.Name))
	name := base
	for n := 1; p.hidden[name] || p.obj.Symbol(name) != nil; n++ {
		name = fmt.Sprintf("%s_%d", base, n)
	}
	p.hidden[name] = true
	p.aliasOf[sym] = name
	p.obj.AddSymbol(&elfobj.Symbol{
		Name: name, Bind: elf.STB_GLOBAL, Type: sym.Type, Other: byte(elf.STV_HIDDEN),
		Section: sym.Section, Value: sym.Value, Size: sym.Size,
	})
	return name
}

// markers finds the callbacks, states and force-unsafe markers the unit
// declared with include/kelp/patch.h.
func (p *prepared) markers() error {
	unit := p.unit.Diff.Report.Unit
	for _, s := range slices.Clone(p.obj.Symbols) {
		if s.Section == nil {
			continue
		}
		switch {
		case strings.HasPrefix(s.Name, markerCallback) && s.Type == elf.STT_FUNC:
			rest := strings.TrimPrefix(s.Name, markerCallback)
			kind := ""
			for _, k := range callbackKinds {
				if strings.HasPrefix(rest, k+"_") {
					kind = k
				}
			}
			if kind == "" {
				return fmt.Errorf("unit %s: %s: unknown callback marker (want %s<pre_patch|post_patch|pre_unpatch|post_unpatch>_<fn>)", unit, s.Name, markerCallback)
			}
			fn := strings.TrimPrefix(rest, kind+"_")
			if i := strings.IndexByte(fn, '.'); i >= 0 {
				// A compiler clone of the wrapper: the original is there too.
				continue
			}
			p.cbs = append(p.cbs, Callback{Object: p.unit.Object, Unit: unit, Kind: kind, Func: fn, Symbol: p.alias(s)})
		case strings.HasPrefix(s.Name, markerState) && s.Type == elf.STT_OBJECT:
			b, err := symBytes(s, 16)
			if err != nil {
				return fmt.Errorf("unit %s: state marker %s: %w", unit, s.Name, err)
			}
			p.states = append(p.states, State{ID: binary.LittleEndian.Uint64(b), Version: binary.LittleEndian.Uint32(b[8:])})
		case strings.HasPrefix(s.Name, markerForce) && s.Type == elf.STT_OBJECT:
			p.force = append(p.force, strings.TrimPrefix(s.Name, markerForce))
		case strings.HasPrefix(s.Name, markerIgnore) && s.Type == elf.STT_OBJECT:
			p.ignore = append(p.ignore, strings.TrimPrefix(s.Name, markerIgnore))
		}
	}
	return nil
}

func symBytes(s *elfobj.Symbol, n uint64) ([]byte, error) {
	if s.Section.Type == elf.SHT_NOBITS {
		return make([]byte, n), nil
	}
	if s.Size < n || s.Value+n > uint64(len(s.Section.Data)) {
		return nil, fmt.Errorf("%d bytes, want %d", s.Size, n)
	}
	return s.Section.Data[s.Value : s.Value+n], nil
}

// placeholders replaces each livepatch relocation by an ordinary one
// against a placeholder symbol (undefined, weak), and removes the .klp.rela
// sections and .klp.sym symbols: the linker would drop the markers, but
// it carries ordinary relocations through section merging.
func (p *prepared) placeholders() error {
	f := p.obj
	unit := p.unit.Diff.Report.Unit
	byKlp := map[*elfobj.Symbol]*elfobj.Symbol{}
	var gone []*elfobj.Section
	for _, sec := range slices.Clone(f.Sections) {
		if !sec.IsLivepatchRelocs() {
			continue
		}
		obj, _, ok := elfobj.ParseKlpRelaName(sec.Name)
		if !ok || sec.Info == nil {
			return fmt.Errorf("unit %s: %s: not a livepatch relocation section of the form .klp.rela.<object>.<section>", unit, sec.Name)
		}
		var rela *elfobj.Section
		for _, r := range f.RelocSections(sec.Info) {
			if r.Type == elf.SHT_RELA && !r.IsLivepatchRelocs() {
				rela = r
				break
			}
		}
		if rela == nil {
			rela = f.AddRelocSection(sec.Info)
		}
		for _, r := range sec.Relocs {
			ks := r.Symbol
			if ks == nil || !ks.IsLivepatch() {
				return fmt.Errorf("unit %s: %s: relocation against %s, want a .klp.sym symbol", unit, sec.Name, ks)
			}
			k, err := parseKlpSym(ks)
			if err != nil {
				return fmt.Errorf("unit %s: %w", unit, err)
			}
			// A module's code may reach another module's symbols (the
			// kernel resolves them as the first module loads); vmlinux's
			// sections reach only vmlinux, and no module section reaches
			// vmlinux (the kernel refuses both).
			if k.Object != obj && (obj == "vmlinux" || k.Object == "vmlinux") {
				return fmt.Errorf("unit %s: %s: relocation against %s of another object", unit, sec.Name, ks.Name)
			}
			k.SecObject = obj
			ph := byKlp[ks]
			if ph == nil {
				name := fmt.Sprintf("__kelp_u%d_klp%d", p.index, len(byKlp))
				// An undefined weak symbol: no linker resolves it (binutils
				// 2.44's ld -r resolves relocations against absolute
				// ones), and modpost does not report it as missing.
				ph = f.AddSymbol(&elfobj.Symbol{Name: name, Bind: elf.STB_WEAK, Type: elf.STT_NOTYPE, Shndx: elf.SHN_UNDEF})
				byKlp[ks] = ph
				p.holder[name] = k
			}
			r.Symbol = ph
			rela.Relocs = append(rela.Relocs, r)
			p.relocs[ph.Name] = append(p.relocs[ph.Name], KlpReloc{
				Section: sec.Info.Name, Offset: r.Offset, Type: f.Arch().RelocName(r.Type), Addend: r.Addend,
				Object: k.Object, Symbol: k.Name, Sympos: k.Sympos,
			})
		}
		gone = append(gone, sec)
	}
	for _, sec := range gone {
		f.RemoveSection(sec)
	}
	for ks := range byKlp {
		f.RemoveSymbol(ks)
	}
	for _, s := range slices.Clone(f.Symbols) {
		if s.IsLivepatch() {
			f.RemoveSymbol(s) // unreferenced
		}
	}
	return nil
}

// parseKlpSym reads a livepatch symbol of a unit.
func parseKlpSym(s *elfobj.Symbol) (klpSym, error) {
	k, err := elfobj.ParseKlpSym(s.Name)
	if err != nil {
		return klpSym{}, err
	}
	return klpSym{KlpSym: k, Type: s.Type, Bind: s.Bind}, nil
}
