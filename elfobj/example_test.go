package elfobj_test

import (
	"fmt"
	"log"

	"github.com/kelp-project/kelp/elfobj"
)

// Remove a function from an object together with every relocation that
// refers to it, then write the object back.
func Example() {
	f, err := elfobj.ReadFile("testdata/seed/basic.o")
	if err != nil {
		log.Fatal(err)
	}
	text := f.Section(".text.add_one")
	f.RemoveSection(text) // also .rela.text.add_one and the add_one symbol
	n := f.RemoveRelocs(func(sec *elfobj.Section, r *elfobj.Reloc) bool {
		return r.Symbol != nil && r.Symbol.Section == text
	})
	fmt.Println("dropped relocations:", n)
	for _, rs := range f.RelocSections(f.Section(".text.dispatch")) {
		for _, r := range rs.Relocs {
			fmt.Printf("%s+%#x %s %s%+d\n", rs.Info.Name, r.Offset, f.Arch().RelocName(r.Type), r.Symbol, r.Addend)
		}
	}
	if _, err := f.Encode(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// dropped relocations: 3
	// .text.dispatch+0xf R_X86_64_PC32 section symbol .data.rel.ro.local.handlers-4
	// .text.dispatch+0x15 R_X86_64_PC32 ext_counter-4
	// .text.dispatch+0x20 R_X86_64_PC32 common_slot-4
}
