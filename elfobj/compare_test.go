package elfobj

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// Helpers that judge a written object by tools that do not share code with
// this package: Go's debug/elf, and binutils' readelf, objdump and ld.

// seedObjects returns the committed seed objects by file name.
func seedObjects(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/seed/*.o")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no seed objects in testdata/seed (%v)", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// binutils returns the path of a binutils program; a missing one fails the
// test under CI and skips it elsewhere.
func binutils(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: name, Package: "binutils"})
	}
	return p
}

func command(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, errb.String())
	}
	if errb.Len() > 0 {
		t.Errorf("%s %s: unexpected diagnostics:\n%s", filepath.Base(name), strings.Join(args, " "), errb.String())
	}
	return out.String()
}

var (
	reHeaders = regexp.MustCompile(`(?m)^(There are \d+ section headers), starting at offset 0x[0-9a-f]+:$`)
	reRelSec  = regexp.MustCompile(`(?m)^(Relocation section '[^']*') at offset 0x[0-9a-f]+ (contains)`)
	// [Nr] Name Type Address Off Size ...
	reShdr = regexp.MustCompile(`(?m)^(\s*\[\s*\d+\] \S+\s+)(\S+)(\s+[0-9a-f]{16} )([0-9a-f]+)( )([0-9a-f]+)`)
)

// readelfListing is `readelf -W -S -s -r` with file offsets blanked, and
// the sizes of string tables, which a writer may pack differently (GNU as
// and objtool leave unused strings behind), blanked too.
func readelfListing(t testing.TB, path string) string {
	t.Helper()
	s := command(t, binutils(t, "readelf"), "-W", "-S", "-s", "-r", path)
	s = reHeaders.ReplaceAllString(s, "$1:")
	s = reRelSec.ReplaceAllString(s, "$1 $2")
	s = reShdr.ReplaceAllStringFunc(s, func(line string) string {
		m := reShdr.FindStringSubmatch(line)
		size := m[6]
		if m[2] == "STRTAB" {
			size = "<strtab size>"
		}
		return m[1] + m[2] + m[3] + "<off>" + m[5] + size
	})
	return s
}

// objdumpListing is `objdump -d -r` without the line naming the file.
func objdumpListing(t testing.TB, path string) string {
	t.Helper()
	s := command(t, binutils(t, "objdump"), "-d", "-r", path)
	_, rest, _ := strings.Cut(s, "file format")
	return rest
}

// ldAccepts links path alone with `ld -r`.
func ldAccepts(t testing.TB, path string) {
	t.Helper()
	command(t, binutils(t, "ld"), "-r", "-o", filepath.Join(t.TempDir(), "linked.o"), path)
}

// compareELF checks through debug/elf that out describes the same object
// as orig: every section header field but the offset (and the size of
// string tables), every section's bytes except the string tables', every
// symbol field but the name offset, the symbol names themselves.
func compareELF(t testing.TB, orig, out []byte) {
	t.Helper()
	a, err := elf.NewFile(bytes.NewReader(orig))
	if err != nil {
		t.Fatalf("debug/elf on the original: %v", err)
	}
	b, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/elf on the written object: %v", err)
	}
	if a.FileHeader != b.FileHeader {
		t.Errorf("file header: %+v, want %+v", b.FileHeader, a.FileHeader)
	}
	if len(a.Sections) != len(b.Sections) {
		t.Fatalf("%d sections, want %d", len(b.Sections), len(a.Sections))
	}
	for i, sa := range a.Sections {
		sb := b.Sections[i]
		ha, hb := sa.SectionHeader, sb.SectionHeader
		ha.Offset, hb.Offset = 0, 0
		if sa.Type == elf.SHT_STRTAB {
			ha.Size, hb.Size, ha.FileSize, hb.FileSize = 0, 0, 0, 0
		}
		if ha != hb {
			t.Errorf("section %d header:\n got %+v\nwant %+v", i, hb, ha)
			continue
		}
		if sa.Type == elf.SHT_STRTAB || sa.Type == elf.SHT_NOBITS || sa.Type == elf.SHT_NULL {
			continue
		}
		da, errA := sa.Data()
		db, errB := sb.Data()
		if errA != nil || errB != nil {
			t.Errorf("section %d (%s) data: %v / %v", i, sa.Name, errA, errB)
			continue
		}
		if sa.Type == elf.SHT_SYMTAB {
			da, db = withoutNames(da), withoutNames(db)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("section %d (%s): contents differ", i, sa.Name)
		}
	}
	symA, errA := a.Symbols()
	symB, errB := b.Symbols()
	if (errA == nil) != (errB == nil) {
		t.Errorf("symbols: %v / %v", errA, errB)
	}
	if !reflect.DeepEqual(symA, symB) {
		t.Errorf("symbols differ")
	}
}

// withoutNames returns a copy of symbol table bytes with st_name zeroed.
func withoutNames(d []byte) []byte {
	d = bytes.Clone(d)
	for i := 0; i+symSize <= len(d); i += symSize {
		copy(d[i:i+4], []byte{0, 0, 0, 0})
	}
	return d
}

// roundTrip parses data, writes it, and checks the rules every object
// must pass without external tools: the result parses again and writes
// to the same bytes, and debug/elf sees the same object. It returns the
// written bytes.
func roundTrip(t testing.TB, data []byte) []byte {
	t.Helper()
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	out, err := f.Encode()
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	g, err := Parse(out)
	if err != nil {
		t.Fatalf("parse the written object: %v", err)
	}
	again, err := g.Encode()
	if err != nil {
		t.Fatalf("write again: %v", err)
	}
	if !bytes.Equal(out, again) {
		t.Fatalf("second write differs from the first (%d vs %d bytes)", len(again), len(out))
	}
	compareELF(t, data, out)
	return out
}

// toolsAgree checks a written object against its original with binutils:
// equivalent readelf listings, identical disassembly, and ld -r accepts
// it.
func toolsAgree(t testing.TB, origPath string, out []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(origPath))
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if a, b := readelfListing(t, origPath), readelfListing(t, path); a != b {
		t.Errorf("readelf listings differ:\n%s", firstDiff(a, b))
	}
	if a, b := objdumpListing(t, origPath), objdumpListing(t, path); a != b {
		t.Errorf("objdump -d -r listings differ:\n%s", firstDiff(a, b))
	}
	ldAccepts(t, path)
}

// firstDiff shows the first differing line of two listings.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n- " + x + "\n+ " + y
		}
	}
	return "(no differing line)"
}
