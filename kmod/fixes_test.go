package kmod

import (
	"encoding/binary"
	"slices"
	"testing"
)

// note builds one ELF note as the kernel shows a module's note section.
func note(owner string, typ uint32, desc string) []byte {
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(owner)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = pad(append(b, owner+"\x00"...))
	return pad(append(b, desc...))
}

func TestParseNotes(t *testing.T) {
	desc := "kelp.description=fix: a\n\nbody\x00kelp.cve=CVE-2024-1086\x00kelp.cve=CVE-2023-52619\x00"
	// A note of another owner first, as a section may hold several.
	data := append(note("Linux", 1, "6.1\x00"), note(NoteOwner, NoteType, desc)...)
	got, ok := ParseNotes(data, NoteOwner, NoteType)
	if !ok || string(got) != desc {
		t.Fatalf("ParseNotes = %q, %v; want %q", got, ok, desc)
	}
	f := FixesOf(ParseModinfo(got))
	if f.Description != "fix: a\n\nbody" || f.Summary() != "fix: a" || !slices.Equal(f.CVEs, []string{"CVE-2024-1086", "CVE-2023-52619"}) {
		t.Errorf("FixesOf = %+v", f)
	}
	if _, ok := ParseNotes(note(NoteOwner, 2, desc), NoteOwner, NoteType); ok {
		t.Error("a note of another type was taken")
	}
	// Truncated anywhere: not found, no panic.
	for n := range len(data) {
		if _, ok := ParseNotes(data[:n], NoteOwner, NoteType); ok {
			t.Errorf("truncated to %d bytes: found", n)
		}
	}
}
