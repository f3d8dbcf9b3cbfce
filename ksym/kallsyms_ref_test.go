package ksym

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// parseKallsymsReference is the first, plain reader of the kallsyms format
// (a scanner, strings.Fields on every line): ParseKallsyms must read every
// input as it does.
func parseKallsymsReference(r io.Reader) (*Kallsyms, error) {
	k := &Kallsyms{Objects: map[string]*Table{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue // blank, or a header line of kelp symbols (DumpHeader)
		}
		f := strings.Fields(line)
		if len(f) < 3 || len(f[1]) != 1 || len(f) > 4 {
			return nil, fmt.Errorf("kallsyms line %d: %q: want address, type, name and an optional [module]", n, line)
		}
		if c := f[1][0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return nil, fmt.Errorf("kallsyms line %d: symbol type %q is not a letter", n, f[1])
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("kallsyms line %d: address %q: %w", n, f[0], err)
		}
		obj := Vmlinux
		if len(f) == 4 {
			m := f[3]
			if len(m) < 3 || !strings.HasPrefix(m, "[") || !strings.HasSuffix(m, "]") || strings.ContainsAny(m[1:len(m)-1], "[]") {
				return nil, fmt.Errorf("kallsyms line %d: module %q is not a name in brackets", n, m)
			}
			obj = m[1 : len(m)-1]
			if obj == "bpf" || obj == "__builtin__ftrace" || obj == "__builtin__kprobes" {
				continue
			}
		}
		t := k.Objects[obj]
		if t == nil {
			t = &Table{Object: obj}
			k.Objects[obj] = t
		}
		t.Syms = append(t.Syms, Symbol{Addr: addr, Type: f[1][0], Name: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kallsyms: %w", err)
	}
	if k.Objects[Vmlinux] == nil {
		return nil, fmt.Errorf("kallsyms: no vmlinux symbols")
	}
	return k, nil
}

// TestParseKallsymsAsReference: the running kernel's /proc/kallsyms, and
// inputs at the edges of the format
// (CRLF, Unicode spaces, no final newline, blank and header lines, too
// many fields, a module per line), read as the plain reader reads them.
func TestParseKallsymsAsReference(t *testing.T) {
	inputs := []string{
		"ffffffff81000000 T _stext\r\nffffffff81000010 t a\t[ext4]\r\n",
		"ffffffff81000000 T x\u00a0y\nffffffff81000000\u0085T z\n",
		"ffffffff81000000 T x",
		"# kelp symbols: release=x\n\n  \t\nffffffff81000000 T x\n",
		"ffffffff81000000 T x [m] extra\n",
		"ffffffff81000000 T x\n1 t y [m]\n2 t z [m]\n3 T w\n4 t v [n]\n",
		"ffffffff81000000 T x\n\x00 T y\n",
		"\r",
		"",
	}
	// The running kernel's table: tens of thousands of lines.
	proc, err := os.ReadFile("/proc/kallsyms")
	if err != nil || strings.Count(string(proc), "\n") < 10000 {
		t.Fatalf("/proc/kallsyms: %d bytes, %v; want a kernel's table", len(proc), err)
	}
	inputs = append(inputs, string(proc))
	for _, in := range inputs {
		k, err := ParseKallsyms(strings.NewReader(in))
		sameAsReference(t, in, k, err)
	}
}
