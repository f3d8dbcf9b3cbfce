package ktree

import "testing"

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
