package ksym

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Export is one line of Module.symvers.
type Export struct {
	Name      string
	CRC       uint32
	Object    string // "vmlinux" or the module name (e.g. "jbd2")
	Path      string // as written: "vmlinux" or the module path "fs/jbd2/jbd2"
	Kind      string // EXPORT_SYMBOL, EXPORT_SYMBOL_GPL, ...
	Namespace string
}

// Symvers is the exported symbols of a kernel build, by name.
type Symvers map[string]Export

// ParseSymvers reads Module.symvers: "crc<TAB>name<TAB>object<TAB>kind<TAB>namespace".
func ParseSymvers(r io.Reader) (Symvers, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("Module.symvers: %w", err)
	}
	return ParseSymversString(string(data))
}

// maxSymversLine bounds a line of Module.symvers.
const maxSymversLine = 64 << 10

// ParseSymversString is ParseSymvers of a file's contents already in
// memory; the exports' strings are slices of text.
func ParseSymversString(text string) (Symvers, error) {
	out := make(Symvers, strings.Count(text, "\n")+1)
	objects := map[string]string{} // ModuleName of each path
	var f [5]string
	for n, rest := 1, text; rest != ""; n++ {
		var line string
		line, rest = cutLine(rest)
		if len(line) > maxSymversLine {
			return nil, fmt.Errorf("Module.symvers line %d: longer than %d bytes", n, maxSymversLine)
		}
		if line == "" {
			continue
		}
		// The first five tab-separated fields; any further are ignored.
		nf, l := 0, line
		for nf < len(f) {
			var more bool
			f[nf], l, more = strings.Cut(l, "\t")
			nf++
			if !more {
				break
			}
		}
		if nf < 4 {
			return nil, fmt.Errorf("Module.symvers line %d: %q: want crc, name, object, kind", n, line)
		}
		crc, ok := crc32Hex(f[0])
		if !ok {
			var err error
			if crc, err = strconv.ParseUint(f[0], 0, 32); err != nil {
				return nil, fmt.Errorf("Module.symvers line %d: crc %q: %w", n, f[0], err)
			}
		}
		if f[1] == "" || f[2] == "" || f[3] == "" {
			return nil, fmt.Errorf("Module.symvers line %d: %q: empty name, object or kind", n, line)
		}
		// kbuild writes names, paths, kinds and namespaces without
		// blanks or control characters (a \r a CRLF file ends its lines
		// with is not part of the last field).
		for _, field := range f[1:nf] {
			for i := 0; i < len(field); i++ {
				// A byte of a multibyte character is >= 0x80.
				if c := field[i]; c <= ' ' || c == 0x7f {
					return nil, fmt.Errorf("Module.symvers line %d: %q: field %q holds a blank or control character", n, line, field)
				}
			}
		}
		obj, ok := objects[f[2]]
		if !ok {
			obj = ModuleName(f[2])
			objects[f[2]] = obj
		}
		if obj == "" {
			return nil, fmt.Errorf("Module.symvers line %d: %q: object %q names no module", n, line, f[2])
		}
		e := Export{Name: f[1], CRC: uint32(crc), Path: f[2], Object: obj, Kind: f[3]}
		if nf > 4 {
			e.Namespace = f[4]
		}
		out[e.Name] = e
	}
	return out, nil
}

// crc32Hex parses a CRC as kbuild writes it, "0x" and 8 hex digits; ok
// is false for anything else (strconv then reads, or refuses, it).
func crc32Hex(s string) (v uint64, ok bool) {
	if len(s) != 10 || s[0] != '0' || s[1] != 'x' && s[1] != 'X' {
		return 0, false
	}
	return hexDigits(s[2:])
}

// ModuleName turns a module path or file name ("fs/jbd2/jbd2",
// "drivers/block/null_blk/null_blk.ko", "nf-conntrack") into the name the
// kernel and livepatch use ("jbd2", "null_blk", "nf_conntrack").
func ModuleName(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz", ".ko", ".o"} {
		b = strings.TrimSuffix(b, ext)
	}
	return strings.ReplaceAll(b, "-", "_")
}
