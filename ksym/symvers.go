package ksym

import (
	"bufio"
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
	out := Symvers{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			return nil, fmt.Errorf("Module.symvers line %d: %q: want crc, name, object, kind", n, line)
		}
		crc, err := strconv.ParseUint(f[0], 0, 32)
		if err != nil {
			return nil, fmt.Errorf("Module.symvers line %d: crc %q: %w", n, f[0], err)
		}
		if f[1] == "" || f[2] == "" || f[3] == "" {
			return nil, fmt.Errorf("Module.symvers line %d: %q: empty name, object or kind", n, line)
		}
		// kbuild writes names, paths, kinds and namespaces without
		// blanks or control characters (a \r a CRLF file ends its lines
		// with is not part of the last field).
		for _, field := range f[1:min(len(f), 5)] {
			if i := strings.IndexFunc(field, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
				return nil, fmt.Errorf("Module.symvers line %d: %q: field %q holds a blank or control character", n, line, field)
			}
		}
		e := Export{Name: f[1], CRC: uint32(crc), Path: f[2], Object: ModuleName(f[2]), Kind: f[3]}
		if e.Object == "" {
			return nil, fmt.Errorf("Module.symvers line %d: %q: object %q names no module", n, line, f[2])
		}
		if len(f) > 4 {
			e.Namespace = f[4]
		}
		out[e.Name] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("Module.symvers: %w", err)
	}
	return out, nil
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
