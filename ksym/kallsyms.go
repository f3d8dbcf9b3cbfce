package ksym

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Vmlinux is the object name of the kernel image, as livepatch names it.
const Vmlinux = "vmlinux"

// Symbol is one entry of a kernel symbol table.
type Symbol struct {
	Addr uint64
	// Type is the kallsyms letter: lower case for locals, upper case for
	// globals (t/T text, d/D data, b/B bss, r/R read-only data, ...).
	Type byte
	Name string
	// File is the source file that defined the symbol (STT_FILE), when
	// the source says so; "" otherwise.
	File string
}

// Global reports whether the symbol has global (or weak) binding.
func (s Symbol) Global() bool { return s.Type >= 'A' && s.Type <= 'Z' }

// Table is the symbols of one kernel object in the order the livepatch
// core counts them.
type Table struct {
	Object string // "vmlinux" or a module name
	Syms   []Symbol
	// Files tells whether Syms carry their source file names.
	Files bool

	byName map[string][]int
}

// Lookup returns the indices (into Syms) of the symbols called name, in
// order.
func (t *Table) Lookup(name string) []int {
	if t.byName == nil {
		t.byName = make(map[string][]int, len(t.Syms))
		for i, s := range t.Syms {
			t.byName[s.Name] = append(t.byName[s.Name], i)
		}
	}
	return t.byName[name]
}

// Kallsyms is a parsed kallsyms dump, split by object.
type Kallsyms struct {
	Objects map[string]*Table // by object name; vmlinux is Vmlinux
}

// Object returns the table of the named object, or nil.
func (k *Kallsyms) Object(name string) *Table {
	if k == nil {
		return nil
	}
	return k.Objects[name]
}

// ParseKallsyms reads the /proc/kallsyms format: "addr type name" with an
// optional "\t[module]"; lines starting with "#" (the header kelp symbols
// writes) are skipped. Symbols of pseudo-objects the livepatch core never
// searches (BPF programs, ftrace trampolines, "[__builtin__kprobes]") are
// dropped.
func ParseKallsyms(r io.Reader) (*Kallsyms, error) {
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
