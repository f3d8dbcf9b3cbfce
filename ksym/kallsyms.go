package ksym

import (
	"fmt"
	"hash/maphash"
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

	// slots is the table's index by name, open addressing on the name's
	// hash (seed): 1 + the index of the first symbol of a name, 0 for an
	// empty slot, at least half the slots empty. next links each symbol
	// to the following one of the same name (-1: none).
	slots []int32
	seed  maphash.Seed
	next  []int32
}

// Lookup returns the indices (into Syms) of the symbols called name, in
// order. The first lookup indexes the table.
func (t *Table) Lookup(name string) []int {
	t.index()
	s := t.slots[probe(t.slots, t.seed, t.Syms, name)]
	if s == 0 {
		return nil
	}
	var idx []int
	for i := s - 1; i >= 0; i = t.next[i] {
		idx = append(idx, int(i))
	}
	return idx
}

// probe returns the slot of slots that holds name's first symbol in
// syms, or the empty slot where it would go.
func probe(slots []int32, seed maphash.Seed, syms []Symbol, name string) uint64 {
	mask := uint64(len(slots) - 1)
	p := maphash.String(seed, name) & mask
	for slots[p] != 0 && syms[slots[p]-1].Name != name {
		p = (p + 1) & mask
	}
	return p
}

// index builds the table's index by name, once. A kernel's table holds
// some 150,000 symbols: one probe sequence per symbol finds its name's
// slot or an empty one, where a map would take a lookup and an insert.
func (t *Table) index() {
	if t.slots != nil {
		return
	}
	n := len(t.Syms)
	size := 1
	for size < 2*n {
		size <<= 1
	}
	seed := maphash.MakeSeed()
	slots := make([]int32, size)
	next := make([]int32, n)
	last := make([]int32, n) // of each name's first symbol: its last
	for i := range t.Syms {
		next[i] = -1
		p := probe(slots, seed, t.Syms, t.Syms[i].Name)
		if first := slots[p] - 1; first >= 0 {
			next[last[first]] = int32(i)
			last[first] = int32(i)
		} else {
			slots[p] = int32(i) + 1
			last[i] = int32(i)
		}
	}
	t.seed, t.next, t.slots = seed, next, slots
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
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("kallsyms: %w", err)
	}
	return ParseKallsymsString(string(data))
}

// ParseKallsymsString is ParseKallsyms of a dump already in memory, such
// as a file's contents: the names are slices of it, not copies.
func ParseKallsymsString(dump string) (*Kallsyms, error) {
	rest := dump
	k := &Kallsyms{Objects: map[string]*Table{}}
	var last *Table
	var f [5]string
	for n := 1; rest != ""; n++ {
		var line string
		line, rest = cutLine(rest)
		if len(line) >= maxKallsymsLine {
			return nil, fmt.Errorf("kallsyms line %d: longer than %d bytes", n, maxKallsymsLine)
		}
		nf, ok := kernelLine(line, &f)
		if !ok {
			nf, ok = asciiFields(line, &f)
		}
		if !ok {
			all := strings.Fields(line)
			nf = copy(f[:], all)
			if len(all) > len(f) {
				nf = len(all)
			}
		}
		if nf == 0 || strings.HasPrefix(line, "#") {
			continue // blank, or a header line of kelp symbols (DumpHeader)
		}
		if nf < 3 || len(f[1]) != 1 || nf > 4 {
			return nil, fmt.Errorf("kallsyms line %d: %q: want address, type, name and an optional [module]", n, line)
		}
		if c := f[1][0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return nil, fmt.Errorf("kallsyms line %d: symbol type %q is not a letter", n, f[1])
		}
		addr, ok := hex16(f[0])
		if !ok {
			var err error
			if addr, err = strconv.ParseUint(f[0], 16, 64); err != nil {
				return nil, fmt.Errorf("kallsyms line %d: address %q: %w", n, f[0], err)
			}
		}
		obj := Vmlinux
		if nf == 4 {
			m := f[3]
			if len(m) < 3 || !strings.HasPrefix(m, "[") || !strings.HasSuffix(m, "]") || strings.ContainsAny(m[1:len(m)-1], "[]") {
				return nil, fmt.Errorf("kallsyms line %d: module %q is not a name in brackets", n, m)
			}
			obj = m[1 : len(m)-1]
			if obj == "bpf" || obj == "__builtin__ftrace" || obj == "__builtin__kprobes" {
				continue
			}
		}
		t := last
		if t == nil || t.Object != obj {
			if t = k.Objects[obj]; t == nil {
				t = &Table{Object: obj}
				if obj == Vmlinux {
					// Most of a dump is the kernel's.
					t.Syms = make([]Symbol, 0, strings.Count(rest, "\n")+1)
				}
				k.Objects[obj] = t
			}
			last = t
		}
		t.Syms = append(t.Syms, Symbol{Addr: addr, Type: f[1][0], Name: f[2]})
	}
	if k.Objects[Vmlinux] == nil {
		return nil, fmt.Errorf("kallsyms: no vmlinux symbols")
	}
	// Every table is indexed by name now, so that lookups (the diff's,
	// after the compile this parse runs beside) find it done, and only
	// read it.
	for _, t := range k.Objects {
		t.index()
	}
	return k, nil
}

// maxKallsymsLine bounds a line of a dump (/proc/kallsyms's are short).
const maxKallsymsLine = 1 << 20

// kernelLine splits a line as the kernel writes them ("%016lx %c %s",
// then "\t[module]" for a module's symbol) as asciiFields does; ok is
// false for any other line, which asciiFields then splits.
func kernelLine(line string, f *[5]string) (n int, ok bool) {
	if len(line) < 20 || line[16] != ' ' || line[18] != ' ' || line[17] <= ' ' || line[17] >= 0x80 {
		return 0, false
	}
	for i := 0; i < 16; i++ {
		if line[i] <= ' ' || line[i] >= 0x80 {
			return 0, false
		}
	}
	end := 19
	for end < len(line) && line[end] > ' ' && line[end] < 0x80 {
		end++
	}
	if end == 19 {
		return 0, false
	}
	f[0], f[1], f[2] = line[:16], line[17:18], line[19:end]
	if end == len(line) {
		return 3, true
	}
	// "\t[module]": one tab, then a last field of ASCII non-blanks.
	if line[end] != '\t' || end+1 == len(line) {
		return 0, false
	}
	for i := end + 1; i < len(line); i++ {
		if line[i] <= ' ' || line[i] >= 0x80 {
			return 0, false
		}
	}
	f[3] = line[end+1:]
	return 4, true
}

// hex16 parses an address of 16 hex digits, as the kernel writes them;
// ok is false for anything else (strconv then reads, or refuses, it).
func hex16(s string) (v uint64, ok bool) {
	if len(s) != 16 {
		return 0, false
	}
	return hexDigits(s)
}

// hexDigits parses s, up to 16 hex digits and nothing else.
func hexDigits(s string) (v uint64, ok bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// asciiFields splits an ASCII line as strings.Fields does into f, and
// returns how many fields it has (more than len(f) when it has more);
// ok is false when the line is not all ASCII (then strings.Fields,
// which knows Unicode's spaces, must split it).
func asciiFields(line string, f *[5]string) (n int, ok bool) {
	start := -1
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c >= 0x80 {
			return 0, false
		}
		space := c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
		switch {
		case space && start >= 0:
			if n < len(f) {
				f[n] = line[start:i]
			}
			n++
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	if start >= 0 {
		if n < len(f) {
			f[n] = line[start:]
		}
		n++
	}
	return n, true
}
