package klpmod

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/elfobj"
)

// objtoolSections are what objtool writes into an object: ORC unwind
// tables, the retpoline, return-thunk and call-depth-tracking call sites,
// and the ENDBR seal list.
var objtoolSections = []string{".orc_unwind", ".orc_unwind_ip", ".orc_header", ".retpoline_sites", ".return_sites", ".call_sites", ".ibt_endbr_seal"}

// objtoolAtLink tells whether the target's kbuild runs objtool on a
// module's linked object rather than on each object (Linux 6.2+ with IBT
// or clang LTO: 6.12's Debian kernels). objtool then writes those
// sections for the whole module, and skips any an object already carries
// ("file already has .return_sites"): units must come to the link
// without them, or the init code's returns, calls and unwind entries would
// be left out.
func objtoolAtLink(headers string) bool {
	f, err := os.Open(filepath.Join(headers, "include", "config", "auto.conf"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "CONFIG_X86_KERNEL_IBT=y", "CONFIG_LTO_CLANG=y":
			return true
		}
	}
	return false
}

// stripObjtool removes objtool's sections from a unit's object (see
// objtoolAtLink).
func stripObjtool(f *elfobj.File) {
	for _, name := range objtoolSections {
		if s := f.Section(name); s != nil {
			f.RemoveSection(s)
		}
	}
}
