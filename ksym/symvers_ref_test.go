package ksym

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// parseSymversReference is the first, plain reader of Module.symvers (a
// line scanner, strings.Split on every line): ParseSymvers must read every
// input whose lines fit its limit as it does.
func parseSymversReference(r io.Reader) (Symvers, error) {
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
			return nil, fmt.Errorf("line %d: fields", n)
		}
		crc, err := strconv.ParseUint(f[0], 0, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: crc", n)
		}
		if f[1] == "" || f[2] == "" || f[3] == "" {
			return nil, fmt.Errorf("line %d: empty", n)
		}
		for _, field := range f[1:min(len(f), 5)] {
			if strings.IndexFunc(field, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
				return nil, fmt.Errorf("line %d: blank", n)
			}
		}
		e := Export{Name: f[1], CRC: uint32(crc), Path: f[2], Object: ModuleName(f[2]), Kind: f[3]}
		if e.Object == "" {
			return nil, fmt.Errorf("line %d: object", n)
		}
		if len(f) > 4 {
			e.Namespace = f[4]
		}
		out[e.Name] = e
	}
	return out, sc.Err()
}

// sameSymversAsReference fails unless the reference reads text as sv (or
// refuses it too, err).
func sameSymversAsReference(t *testing.T, text string, sv Symvers, err error) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if len(l) > maxSymversLine-2 {
			return // beyond the scanner's buffer: the reference fails apart
		}
	}
	ref, rerr := parseSymversReference(strings.NewReader(text))
	if (err == nil) != (rerr == nil) {
		t.Fatalf("%q: error %v, reference's %v", text, err, rerr)
	}
	if err == nil && !reflect.DeepEqual(sv, ref) {
		t.Fatalf("%q: read differently from the reference", text)
	}
}

// TestParseSymversAsReference: the kernel headers' own Module.symvers
// files, and edge cases (CRLF, no final newline, more fields, blank lines,
// a control character), read as the reference reads them.
func TestParseSymversAsReference(t *testing.T) {
	files, _ := filepath.Glob("/usr/src/linux-headers-*/Module.symvers")
	if len(files) == 0 {
		t.Fatal("no /usr/src/linux-headers-*/Module.symvers on this machine (install a linux-headers package)")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sv, err := ParseSymversString(string(data))
		if err != nil || len(sv) < 1000 {
			t.Fatalf("%s: %d exports, %v", f, len(sv), err)
		}
		sameSymversAsReference(t, string(data), sv, err)
	}
	for _, text := range []string{
		"0x1\ta\tvmlinux\tEXPORT_SYMBOL\t\r\n0x2\tb\tfs/x/y\tEXPORT_SYMBOL_GPL\tNS\r\n",
		"0x1\ta\tvmlinux\tEXPORT_SYMBOL",
		"\n\n0x1\ta\tvmlinux\tEXPORT_SYMBOL\tNS\textra\tmore\n\n",
		"0x1\ta\tvmlinux\tEXPORT_SYMBOL\tN S\n",
		"0x1\ta\tvmlinux\n",
		"0x1\ta\t.ko\tEXPORT_SYMBOL\n",
		"\r\n",
		"",
	} {
		sv, err := ParseSymversString(text)
		sameSymversAsReference(t, text, sv, err)
	}
}
