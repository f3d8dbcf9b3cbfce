package ksym

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// DumpHeader is what a kallsyms dump written by kelp symbols says about
// the kernel it was taken on, in its first line:
//
//	# kelp symbols: release=6.1.0-57-amd64 build-id=0123... version=6.1.192-3
type DumpHeader struct {
	Release string
	BuildID string // hex; "" when the kernel exposes none
	// Version is the Debian version of the kernel's packages, from its
	// version string ("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (...)");
	// "" for a kernel that names none. One release (ABI) is shipped by
	// several builds: the version tells which one the dump is of.
	Version string
}

const dumpHeaderPrefix = "# kelp symbols:"

// String is the header line, without its newline.
func (h DumpHeader) String() string {
	s := dumpHeaderPrefix + " release=" + h.Release
	if h.BuildID != "" {
		s += " build-id=" + h.BuildID
	}
	if h.Version != "" {
		s += " version=" + h.Version
	}
	return s
}

// ReadDumpHeader returns the header of a kallsyms dump; ok is false for a
// dump without one (a plain copy of /proc/kallsyms, or one written by an
// older kelp).
func ReadDumpHeader(data []byte) (h DumpHeader, ok bool, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	if !sc.Scan() {
		return h, false, nil
	}
	rest, found := strings.CutPrefix(sc.Text(), dumpHeaderPrefix)
	if !found {
		return h, false, nil
	}
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "release":
			h.Release = v
		case "build-id":
			h.BuildID = v
		case "version":
			h.Version = v
		}
	}
	if h.Release == "" {
		return h, false, fmt.Errorf("kallsyms dump header %q names no release", sc.Text())
	}
	return h, true, nil
}

// BuildIDFromNotes returns the GNU build id (hex) among ELF notes as the
// kernel exposes its own in /sys/kernel/notes, or "" when there is none.
func BuildIDFromNotes(notes []byte) string {
	const ntGNUBuildID = 3
	align4 := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for len(notes) >= 12 {
		namesz := binary.LittleEndian.Uint32(notes[0:])
		descsz := binary.LittleEndian.Uint32(notes[4:])
		typ := binary.LittleEndian.Uint32(notes[8:])
		body := notes[12:]
		n, d := align4(namesz), align4(descsz)
		if uint64(n)+uint64(d) > uint64(len(body)) {
			return ""
		}
		name := body[:namesz]
		if typ == ntGNUBuildID && string(bytes.TrimRight(name, "\x00")) == "GNU" && descsz > 0 {
			return hex.EncodeToString(body[n : n+descsz])
		}
		notes = body[n+d:]
	}
	return ""
}
