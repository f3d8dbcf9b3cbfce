package objdiff

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
)

// compileC compiles src as the kernel compiles (one section per function
// and per variable) and reads the object.
func compileC(t *testing.T, name, src string) *elfobj.File {
	t.Helper()
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	o := filepath.Join(dir, name+".o")
	cmd := exec.Command("gcc", "-c", "-O2", "-fno-pic", "-mcmodel=kernel", "-ffunction-sections", "-fdata-sections", "-o", o, c)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	f, err := elfobj.ReadFile(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// twins diffs the named elements of two objects after correlating them:
// the reason each differs ("" when equal).
func twins(t *testing.T, orig, patched *elfobj.File, names ...string) map[string]string {
	t.Helper()
	o, err := newSide(orig, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newSide(patched, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	correlate(o, p)
	got := map[string]string{}
	for _, n := range names {
		es := p.byKey[n]
		if len(es) != 1 || es[0].twin == nil {
			t.Fatalf("%s: %d elements in the patched object, twin %v", n, len(es), len(es) == 1 && es[0].twin != nil)
		}
		got[n], _ = diff(es[0])
	}
	return got
}

// TestAnonExtent: a table points to an anonymous constant (a literal with
// zero bytes, so not a mergeable string); the original code also points
// into its middle, the patched code no longer does. The constant's bytes
// are the same, so the table is unchanged; a constant whose bytes change
// past the place the original's other reference named still changes it.
func TestAnonExtent(t *testing.T) {
	const head = `
#define KEY "\0\0\0\0\0\0\0\0\1\2\3\4\5\6\7"
#define OTHER "\0\0\0\0\0\0\0\0\7\6\5\4\3\2\1"
struct ent { const char *key; int v; };
extern int cmp(const void *, const void *, unsigned long);
`
	orig := compileC(t, "orig", head+`
const struct ent tbl[] = { { KEY, 1 } };
int half(const char *p) { return cmp(p, KEY + 8, 8); }
`)
	patched := compileC(t, "patched", head+`
const struct ent tbl[] = { { KEY, 1 } };
int half(const char *p) { return cmp(p, KEY, 8); }
`)
	got := twins(t, orig, patched, "tbl", "half")
	if got["tbl"] != "" {
		t.Errorf("tbl differs: %s", got["tbl"])
	}
	if got["half"] == "" {
		t.Errorf("half reads as unchanged")
	}
	changed := compileC(t, "changed", head+`
const struct ent tbl[] = { { OTHER, 1 } };
int half(const char *p) { return cmp(p, OTHER, 8); }
`)
	if got := twins(t, orig, changed, "tbl"); got["tbl"] == "" {
		t.Errorf("tbl with other bytes past the original's second place reads as unchanged")
	}
}
