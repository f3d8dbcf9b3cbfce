package objdiff

import (
	"github.com/kelp-project/kelp/refusal"
)

// Report is what objdiff found in one unit and what it put in the output
// object. Every list is in a deterministic order (the patched object's
// order unless said otherwise), so equal inputs give equal JSON.
type Report struct {
	Unit   string `json:"unit"`   // e.g. "fs/proc/loadavg.o"
	Object string `json:"object"` // vmlinux or the module the unit is linked into

	// Changed are the existing functions the patch replaces: each becomes
	// a klp_func (old name and sympos in the running kernel, new symbol in
	// the output object).
	Changed []Func `json:"changed,omitempty"`
	// New are functions and data objects that exist only in the patched
	// unit; Fresh are compiler-generated statics (lock class keys, once
	// flags, dynamic debug descriptors, ...) the included code gets its own
	// copies of.
	New   []NewSymbol `json:"new,omitempty"`
	Fresh []string    `json:"fresh,omitempty"`
	// Helpers are functions included without being patched into the
	// running kernel: pieces split off a changed function (.cold, .part)
	// that only included code calls.
	Helpers []string `json:"helpers,omitempty"`
	// LineOnly are functions whose only differences are __LINE__
	// immediates: not changed.
	LineOnly []string `json:"line_only,omitempty"`

	// KlpRelocs are the references the livepatch core resolves when the
	// patch (or its target module) loads.
	KlpRelocs []KlpReloc `json:"klp_relocs,omitempty"`
	// Exports are the vmlinux exports the output object references with
	// normal relocations, with the CRC the module's __versions needs.
	Exports []ExportUse `json:"exports,omitempty"`
	// Special lists, per special section, the entries kept.
	Special []SpecialKept `json:"special,omitempty"`

	// Ignored lists every difference between the two compilations that
	// the patch deliberately leaves out, with the reason.
	Ignored []Ignored `json:"ignored,omitempty"`

	Warnings []string         `json:"warnings,omitempty"`
	Refusals []refusal.Reason `json:"refusals,omitempty"`
}

// Func is one changed function.
type Func struct {
	Name    string   `json:"name"`    // in the running kernel
	Sympos  int      `json:"sympos"`  // for klp_func.old_sympos
	Symbol  string   `json:"symbol"`  // the new function in the output object
	Section string   `json:"section"` // its section in the output object
	Reasons []string `json:"reasons"`
}

// NewSymbol is a function or data object only the patched unit has.
type NewSymbol struct {
	Name     string `json:"name"`
	Function bool   `json:"is_function"`
	Global   bool   `json:"is_global"`
	Section  string `json:"section"`
}

// KlpReloc is one relocation the livepatch core applies: at Offset in
// Section of the output object, of Type, against Symbol (number Sympos
// among the same-named symbols) of Object, plus Addend.
type KlpReloc struct {
	Section string `json:"section"`
	Offset  uint64 `json:"offset"`
	Type    string `json:"type"`
	Addend  int64  `json:"addend"`
	Object  string `json:"object"`
	Symbol  string `json:"symbol"`
	Sympos  int    `json:"sympos"`
}

// ExportUse is one exported vmlinux symbol the output references.
type ExportUse struct {
	Name string `json:"name"`
	CRC  uint32 `json:"crc"`
}

// SpecialKept counts the entries of a special section the output keeps.
type SpecialKept struct {
	Section string   `json:"section"`
	Kept    int      `json:"kept"`
	Of      int      `json:"of"`
	In      []string `json:"in"` // the functions (or sections) they point into
}

// Ignored is one difference kelp found and deliberately left out.
type Ignored struct {
	Symbol  string `json:"symbol"`
	Section string `json:"section,omitempty"`
	What    string `json:"what"`
	Reason  string `json:"reason"`
}
