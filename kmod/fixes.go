package kmod

import (
	"encoding/binary"
	"strings"
)

// A livepatch module built by kelp carries its metadata entries (those of
// Fixes) in an allocated ELF note as well as in .modinfo: the kernel keeps
// no .modinfo of a loaded module, but shows its notes in
// /sys/module/NAME/notes/NoteSection. Owner NoteOwner, type NoteType,
// descriptor "key=value\0key=value\0…".
const (
	NoteSection = ".note.kelp"
	NoteOwner   = "kelp"
	NoteType    = 1
)

// Fixes is what a livepatch module built by kelp says it fixes: the
// .modinfo entries kelp.description and kelp.cve (one per CVE id), and
// kelp.cves, the number of CVE ids, which kelp build always writes.
type Fixes struct {
	Description string   `json:"description,omitempty"`
	CVEs        []string `json:"cves"`
	// Known: the module says what it fixes (it has kelp's entries). A
	// module without them (built by another tool, or by a kelp that
	// recorded nothing for a patch naming no CVE) may fix any CVE: its
	// empty CVEs mean "unknown", not "none".
	Known bool `json:"cves_known"`
}

// CVECountKey is the entry kelp build always writes: the number of
// kelp.cve entries, so that a module naming no CVE says so.
const CVECountKey = "kelp.cves"

// FixesOf reads Fixes from modinfo entries (a module file's .modinfo, or
// the .note.kelp section the kernel shows for a loaded module).
func FixesOf(info map[string][]string) Fixes {
	f := Fixes{CVEs: append([]string{}, info["kelp.cve"]...)}
	if d := info["kelp.description"]; len(d) > 0 {
		f.Description = d[0]
	}
	f.Known = len(info[CVECountKey]) > 0 || len(info["kelp.cve"]) > 0 || len(info["kelp.description"]) > 0
	return f
}

// Summary is the first line of the description.
func (f Fixes) Summary() string {
	first, _, _ := strings.Cut(f.Description, "\n")
	return first
}

// ParseNotes finds, in the contents of an ELF note section (as
// /sys/module/NAME/notes/SECTION shows it), the descriptor of the first
// note with the given owner and type.
func ParseNotes(data []byte, owner string, typ uint32) ([]byte, bool) {
	le := binary.LittleEndian
	for len(data) >= 12 {
		namesz, descsz, t := le.Uint32(data), le.Uint32(data[4:]), le.Uint32(data[8:])
		nameEnd := 12 + (uint64(namesz)+3)&^3
		descEnd := nameEnd + (uint64(descsz)+3)&^3
		if descEnd > uint64(len(data)) || 12+uint64(namesz) > uint64(len(data)) {
			return nil, false
		}
		name := strings.TrimRight(string(data[12:12+namesz]), "\x00")
		if name == owner && t == typ {
			return data[nameEnd : nameEnd+uint64(descsz)], true
		}
		data = data[descEnd:]
	}
	return nil, false
}
