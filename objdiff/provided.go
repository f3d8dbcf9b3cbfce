package objdiff

import (
	"debug/elf"

	"github.com/kelp-project/kelp/elfobj"
)

// NewGlobals returns the global symbols the patched unit defines and the
// original does not. Other units of the same patch reference them inside
// the patch module (Input.Provided), not in the running kernel.
func NewGlobals(orig, patched *elfobj.File) []string {
	var out []string
	for _, s := range patched.Symbols {
		if s.IsLocal() || s.Section == nil || s.Type == elf.STT_SECTION {
			continue
		}
		if o := orig.Symbol(s.Name); o == nil || o.IsUndefined() {
			out = append(out, s.Name)
		}
	}
	return out
}
