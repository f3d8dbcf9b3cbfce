package elfobj

import (
	"slices"
	"strings"
)

// strtab builds an ELF string table: each distinct string once, and a
// string that is the tail of another stored inside it (".text.foo" inside
// ".rela.text.foo"), as GNU as and ld lay them out. Strings are placed in
// the order they were first added, so the result depends only on the
// sequence of add calls.
type strtab struct {
	pos  map[string]int32
	list []string
	off  []uint32
	root []int32 // handle of the string each one is stored in
	size uint64
}

func newStrtab(hint int) *strtab {
	return &strtab{pos: make(map[string]int32, hint), list: make([]string, 0, hint)}
}

// add records s and returns a handle for offset; the empty string is
// always at offset 0 and gets handle -1.
func (t *strtab) add(s string) int32 {
	if s == "" {
		return -1
	}
	if p, ok := t.pos[s]; ok {
		return p
	}
	p := int32(len(t.list))
	t.pos[s] = p
	t.list = append(t.list, s)
	return p
}

// offset returns the offset of the string behind handle h; valid after
// finish.
func (t *strtab) offset(h int32) uint32 {
	if h < 0 {
		return 0
	}
	return t.off[h]
}

// finish assigns offsets.
func (t *strtab) finish() {
	n := len(t.list)
	// Sorted by reversed string, a string comes right before the strings
	// it is a tail of; walking backwards finds each one's container.
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareReversed(t.list[a], t.list[b]) })
	root := make([]int32, n)
	prev := int32(-1)
	for k := n - 1; k >= 0; k-- {
		i := order[k]
		root[i] = i
		if prev >= 0 && strings.HasSuffix(t.list[prev], t.list[i]) {
			root[i] = root[prev]
		}
		prev = i
	}
	t.off = make([]uint32, n)
	off := uint64(1)
	for i, s := range t.list {
		if root[i] == int32(i) {
			t.off[i] = uint32(off)
			off += uint64(len(s)) + 1
		}
	}
	for i, s := range t.list {
		if r := root[i]; r != int32(i) {
			t.off[i] = t.off[r] + uint32(len(t.list[r])-len(s))
		}
	}
	t.root = root
	t.size = off
}

// fill writes the table into dst (len(dst) == t.size, zeroed).
func (t *strtab) fill(dst []byte) {
	for i, s := range t.list {
		if t.root[i] == int32(i) {
			copy(dst[t.off[i]:], s)
		}
	}
}

// compareReversed orders strings by their bytes read from the end.
func compareReversed(a, b string) int {
	i, j := len(a)-1, len(b)-1
	for i >= 0 && j >= 0 {
		if a[i] != b[j] {
			if a[i] < b[j] {
				return -1
			}
			return 1
		}
		i--
		j--
	}
	return len(a) - len(b)
}
