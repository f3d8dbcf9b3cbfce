package klpmod

import (
	"debug/elf"
	"fmt"
	"slices"
	"sort"

	"github.com/kelp-project/kelp/elfobj"
)

// postLink turns the linked module's relocations against placeholders
// into livepatch relocation sections ".klp.rela.<object>.<section>" and
// the placeholders into ".klp.sym.<object>.<name>,<sympos>" symbols with
// st_shndx SHN_LIVEPATCH. It returns the livepatch relocations as the
// final module has them.
func postLink(f *elfobj.File, holders map[string]klpSym) ([]KlpReloc, error) {
	// One livepatch symbol per name: placeholders of different units for
	// the same symbol share it.
	ph := map[*elfobj.Symbol]klpSym{}
	keep := map[string]*elfobj.Symbol{}
	target := map[*elfobj.Symbol]*elfobj.Symbol{}
	found := map[string]bool{}
	for _, s := range f.Symbols {
		k, ok := holders[s.Name]
		if !ok || s.Section != nil || s.Shndx != elf.SHN_UNDEF {
			continue
		}
		found[s.Name] = true
		ph[s] = k
		if keep[k.String()] == nil {
			keep[k.String()] = s
		}
		target[s] = keep[k.String()]
	}
	for name := range holders {
		if !found[name] {
			return nil, fmt.Errorf("post-link: placeholder %s for %s is missing from the linked module", name, holders[name].String())
		}
	}
	var out []KlpReloc
	type key struct {
		obj    string
		target *elfobj.Section
	}
	klpSecs := map[key]*elfobj.Section{}
	var order []key
	var emptied []*elfobj.Section
	for _, rs := range slices.Clone(f.Sections) {
		if rs.Type != elf.SHT_RELA || rs.IsLivepatchRelocs() {
			continue
		}
		kept := rs.Relocs[:0]
		for _, r := range rs.Relocs {
			k, ok := ph[r.Symbol]
			if !ok {
				kept = append(kept, r)
				continue
			}
			if rs.Info == nil || rs.Info.Flags&elf.SHF_ALLOC == 0 {
				return nil, fmt.Errorf("post-link: %s: livepatch relocation against %s in a section the module does not load", rs.Name, k.String())
			}
			r.Symbol = target[r.Symbol]
			kk := key{k.SecObject, rs.Info}
			if klpSecs[kk] == nil {
				klpSecs[kk] = &elfobj.Section{
					Name: elfobj.KlpRelaName(k.SecObject, rs.Info.Name), Type: elf.SHT_RELA,
					Flags: elf.SHF_ALLOC | elf.SHF_INFO_LINK | elfobj.SHFRelaLivepatch,
					Link:  f.Symtab, Info: rs.Info, Addralign: 8, Entsize: 24,
				}
				order = append(order, kk)
			}
			klpSecs[kk].Relocs = append(klpSecs[kk].Relocs, r)
			out = append(out, KlpReloc{
				Section: rs.Info.Name, Offset: r.Offset, Type: f.Arch().RelocName(r.Type), Addend: r.Addend,
				Object: k.Object, Symbol: k.Name, Sympos: k.Sympos,
			})
		}
		rs.Relocs = kept
		if len(kept) == 0 {
			emptied = append(emptied, rs)
		}
	}
	for _, rs := range emptied {
		f.RemoveSection(rs)
	}
	for _, kk := range order {
		f.InsertSectionAfter(kk.target, klpSecs[kk])
	}
	// In symbol table order: removing a symbol renumbers the table (locals
	// first), so the order of the edits must not depend on map iteration.
	var inOrder []*elfobj.Symbol
	for _, s := range f.Symbols {
		if _, ok := ph[s]; ok {
			inOrder = append(inOrder, s)
		}
	}
	for _, s := range inOrder {
		k := ph[s]
		if target[s] != s {
			f.RemoveSymbol(s)
			continue
		}
		s.Name = k.String()
		s.Bind, s.Type, s.Other, s.Value, s.Size = k.Bind, k.Type, 0, 0, 0
		s.SetLivepatch()
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("post-link: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Section != out[j].Section {
			return out[i].Section < out[j].Section
		}
		return out[i].Offset < out[j].Offset
	})
	return out, nil
}
