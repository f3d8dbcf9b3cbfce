package ksym

import (
	"encoding/binary"
	"strings"
	"testing"
)

func note(name string, typ uint32, desc []byte) []byte {
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	var out []byte
	out = binary.LittleEndian.AppendUint32(out, uint32(len(name)+1))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(desc)))
	out = binary.LittleEndian.AppendUint32(out, typ)
	out = append(out, pad(append([]byte(name), 0))...)
	return append(out, pad(desc)...)
}

func TestBuildIDFromNotes(t *testing.T) {
	id := []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	// The kernel's notes hold Xen and Linux notes before or after the
	// build id.
	notes := append(note("Xen", 3, []byte{1, 2, 3}), note("Linux", 6, []byte("6.1"))...)
	notes = append(notes, note("GNU", 3, id)...)
	if got := BuildIDFromNotes(notes); got != "deadbeef0102030405060708090a0b0c0d0e0f10" {
		t.Errorf("build id = %q", got)
	}
	if got := BuildIDFromNotes(note("GNU", 1, []byte{1, 2, 3, 4})); got != "" {
		t.Errorf("ABI tag read as build id %q", got)
	}
	if got := BuildIDFromNotes(notes[:len(notes)-4]); got != "" {
		t.Errorf("truncated notes gave %q", got)
	}
}

func TestDumpHeader(t *testing.T) {
	for _, h := range []DumpHeader{
		{Release: "6.1.0-57-amd64", BuildID: "00ff"},
		{Release: "6.1.0-57-amd64", BuildID: "00ff", Version: "6.1.192-3"},
		{Release: "6.12.117+deb13-amd64", Version: "6.12.117-1"},
	} {
		got, ok, err := ReadDumpHeader([]byte(h.String() + "\nffffffff81000000 T _text\n"))
		if err != nil || !ok || got != h {
			t.Errorf("ReadDumpHeader(%q) = %+v, %v, %v", h.String(), got, ok, err)
		}
	}
	h := DumpHeader{Release: "6.1.0-57-amd64", BuildID: "00ff", Version: "6.1.192-3"}
	if got, want := h.String(), "# kelp symbols: release=6.1.0-57-amd64 build-id=00ff version=6.1.192-3"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	dump := h.String() + "\nffffffff81000000 T _text\nffffffff81000010 t foo\n"
	k, err := ParseKallsyms(strings.NewReader(dump))
	if err != nil || len(k.Object(Vmlinux).Syms) != 2 {
		t.Fatalf("ParseKallsyms with a header: %v", err)
	}
	if _, ok, err := ReadDumpHeader([]byte("ffffffff81000000 T _text\n")); ok || err != nil {
		t.Errorf("headerless dump: ok %v, err %v", ok, err)
	}
	if _, _, err := ReadDumpHeader([]byte("# kelp symbols: build-id=00\n")); err == nil {
		t.Error("a header without a release was accepted")
	}
}
