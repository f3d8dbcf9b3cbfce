package ktree

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestFixdepCommand reads the command out of kbuild's command-record
// line, quotes and all, and nothing out of lines of another shape.
func TestFixdepCommand(t *testing.T) {
	for _, c := range []struct{ rest, dotd, obj, want string }{
		{`fs/proc/.cmdline.o.d fs/proc/cmdline.o 'gcc -c -o fs/proc/cmdline.o fs/proc/cmdline.c; ./tools/objtool/objtool --orc fs/proc/cmdline.o' > fs/proc/.cmdline.o.cmd; rm -f fs/proc/.cmdline.o.d`,
			"fs/proc/.cmdline.o.d", "fs/proc/cmdline.o", "gcc -c -o fs/proc/cmdline.o fs/proc/cmdline.c; ./tools/objtool/objtool --orc fs/proc/cmdline.o"},
		{`d/.x.o.d d/x.o 'gcc -DKBUILD_MODNAME='\''"x"'\'' -c d/x.c' > d/.x.o.cmd`, "d/.x.o.d", "d/x.o", `gcc -DKBUILD_MODNAME='"x"' -c d/x.c`},
		{`d/.x.o.d d/x.o 'gcc -c d/x.c' > d/.y.o.cmd`, "d/.x.o.d", "d/x.o", ""}, // recorded for another object
		{`d/.x.o.d d/x.o gcc -c d/x.c > d/.x.o.cmd`, "d/.x.o.d", "d/x.o", ""},   // not quoted
		{`d/.x.o.d d/y.o 'gcc' > d/.x.o.cmd`, "d/.x.o.d", "d/x.o", ""},          // another object's line
	} {
		if got := fixdepCommand(c.rest, c.dotd, c.obj); got != c.want {
			t.Errorf("fixdepCommand(%q) = %q; want %q", c.rest, got, c.want)
		}
	}
}

// TestFindRecord looks up every name of sorted records of several sizes
// and line lengths (lines longer than the bisection's reads among them),
// and names that are not there: before the first, after the last, between
// two, and prefixes of recorded names.
func TestFindRecord(t *testing.T) {
	for _, c := range []struct{ names, long int }{{1, 10}, {3, 1 << 17}, {500, 300}, {4000, 2500}} {
		var names []string
		for i := range c.names {
			names = append(names, fmt.Sprintf("d%03d/obj%05d.o", i%7, i))
		}
		slices.Sort(names)
		var rec bytes.Buffer
		rec.WriteString(objCmdsHeader)
		want := map[string]string{}
		for i, n := range names {
			rest := fmt.Sprintf("key%d\x00gcc -c %s %s", i, n, strings.Repeat("x", (i*7919)%c.long))
			want[n] = rest
			rec.WriteString(n + "\x00" + rest + "\n")
		}
		r := bytes.NewReader(rec.Bytes())
		for _, n := range names {
			if got, ok := findRecord(r, r.Size(), n); !ok || got != want[n] {
				t.Fatalf("%d names: findRecord(%q) = %.40q, %v; want its line", c.names, n, got, ok)
			}
		}
		for _, absent := range []string{"", "a.o", "zzz.o", names[0][:4], strings.TrimSuffix(names[len(names)-1], ".o"),
			names[len(names)/2] + "x", "d000/obj.o"} {
			if _, ok := want[absent]; ok {
				continue
			}
			if got, ok := findRecord(r, r.Size(), absent); ok {
				t.Errorf("%d names: findRecord(%q) = %.40q; want not found", c.names, absent, got)
			}
		}
		// A record cut short finds no line past the cut, and a record
		// of another format none at all.
		cut := rec.Bytes()[:rec.Len()-5]
		last := names[len(names)-1]
		if got, ok := findRecord(bytes.NewReader(cut), int64(len(cut)), last); ok {
			t.Errorf("%d names, cut record: findRecord(%q) = %.40q; want not found", c.names, last, got)
		}
		other := append([]byte("kelp object commands v0\n"), rec.Bytes()[len(objCmdsHeader):]...)
		if _, ok := findRecord(bytes.NewReader(other), int64(len(other)), names[0]); ok {
			t.Errorf("%d names: a record of another format was read", c.names)
		}
	}
	// Unsorted: a name may be missed, never answered with another's line.
	var rec bytes.Buffer
	rec.WriteString(objCmdsHeader)
	var names []string
	for i := range 3000 {
		n := fmt.Sprintf("u/%05d.o", (i*7907)%3000)
		names = append(names, n)
		rec.WriteString(n + "\x00k\x00cmd " + n + strings.Repeat(" y", i%400) + "\n")
	}
	r := bytes.NewReader(rec.Bytes())
	found := 0
	for _, n := range names {
		if got, ok := findRecord(r, r.Size(), n); ok {
			found++
			if !strings.HasPrefix(got, "k\x00cmd "+n) {
				t.Fatalf("unsorted record: findRecord(%q) = %.40q", n, got)
			}
		}
	}
	if found == 0 {
		t.Errorf("unsorted record: none of %d names found; the case tests nothing", len(names))
	}
}
