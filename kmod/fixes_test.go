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

// TestFixesKnown: a module says what it fixes when it carries any of
// kelp's entries, even naming no CVE; without them nothing is known.
func TestFixesKnown(t *testing.T) {
	for _, c := range []struct {
		info  map[string][]string
		known bool
	}{
		{map[string][]string{"kelp.cves": {"0"}}, true},
		{map[string][]string{"kelp.cves": {"1"}, "kelp.cve": {"CVE-2024-1086"}}, true},
		{map[string][]string{"kelp.cve": {"CVE-2024-1086"}}, true},
		{map[string][]string{"kelp.description": {"fix"}}, true},
		{map[string][]string{"license": {"GPL"}, "livepatch": {"Y"}}, false},
		{map[string][]string{}, false},
	} {
		if f := FixesOf(c.info); f.Known != c.known || f.CVEs == nil {
			t.Errorf("FixesOf(%v) = %+v, want known %v and a non-nil CVE list", c.info, f, c.known)
		}
	}
}
