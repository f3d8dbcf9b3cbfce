package ksym

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// formatKallsyms writes tables back in the /proc/kallsyms format.
func formatKallsyms(k *Kallsyms) string {
	var b strings.Builder
	objs := make([]string, 0, len(k.Objects))
	for o := range k.Objects {
		objs = append(objs, o)
	}
	sort.Strings(objs)
	for _, o := range objs {
		for _, s := range k.Objects[o].Syms {
			fmt.Fprintf(&b, "%016x %c %s", s.Addr, s.Type, s.Name)
			if o != Vmlinux {
				fmt.Fprintf(&b, "\t[%s]", o)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// FuzzParseKallsyms: a dump from another machine parses to tables whose
// names are real tokens, and written back it parses to the same tables.
func FuzzParseKallsyms(f *testing.F) {
	f.Add("ffffffff81000000 T _stext\nffffffff81001000 t cmdline_proc_show\nffffffffc0001000 t ext4_foo\t[ext4]\n")
	f.Add("ffffffffc0002000 t bpf_prog_x\t[bpf]\nffffffff81000000 T startup_64\n")
	f.Add("0000000000000000 A fixed_percpu_data\n\n   \nffffffff81000000 T x\t[]\n")
	f.Add("zz T x\n")
	// Lines as the kernel writes them, and near them.
	f.Add("ffffffff81000000 T _stext\r\nffffffffc0001000 t ext4_foo\t[ext4] \nffffffffc0001000 t ext4_foo\t[ext4]\t[x]\nffffffffc0001000 t ext4_foo \t[ext4]\n")
	f.Add("ffffffff8100000g T x\nffffffff 1000000 T x\nFFFFFFFF81000000 t \u00e9t\u00e9\nffffffff81000000 T x\u2003[m]\n")
	f.Add("ffffffff81000000  T x\nffffffff81000000 TT x\nffffffff81000000 T\t[m]\n#fffffff81000000 T x\n")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseKallsyms(strings.NewReader(text))
		sameAsReference(t, text, k, err)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if k.Object(Vmlinux) == nil {
			t.Fatal("parsed without vmlinux symbols")
		}
		for o, tab := range k.Objects {
			if o == "" || tab.Object != o || strings.ContainsAny(o, " \t[]") {
				t.Fatalf("object %q (table %q)", o, tab.Object)
			}
			for _, s := range tab.Syms {
				if s.Name == "" || strings.ContainsAny(s.Name, " \t\n") || !('a' <= s.Type && s.Type <= 'z' || 'A' <= s.Type && s.Type <= 'Z') {
					t.Fatalf("symbol %+v in %s", s, o)
				}
			}
		}
		again, err := ParseKallsyms(strings.NewReader(formatKallsyms(k)))
		if err != nil {
			t.Fatalf("written back: %v", err)
		}
		for o, tab := range k.Objects {
			if !reflect.DeepEqual(again.Objects[o].Syms, tab.Syms) {
				t.Fatalf("%s reads differently once written back", o)
			}
		}
		if len(again.Objects) != len(k.Objects) {
			t.Fatalf("%d objects written back as %d", len(k.Objects), len(again.Objects))
		}
	})
}

// FuzzParseSymvers: every export read from a Module.symvers has a name, an
// object and a kind, and written back it reads the same.
func FuzzParseSymvers(f *testing.F) {
	f.Add("0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x0\tjbd2_journal_start\tfs/jbd2/jbd2\tEXPORT_SYMBOL_GPL\tNS\n")
	f.Add("0x1\t\tvmlinux\tEXPORT_SYMBOL\n")
	f.Add("12\ta\tb\n")
	f.Add("0X1234ABCD\ta\tvmlinux\tEXPORT_SYMBOL\n0x1234abcg\tb\tvmlinux\tEXPORT_SYMBOL\n0x123456789\tc\tvmlinux\tK\n0x_1234567\td\tvmlinux\tK\n")
	f.Fuzz(func(t *testing.T, text string) {
		sv, err := ParseSymvers(strings.NewReader(text))
		sameSymversAsReference(t, text, sv, err)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		var b bytes.Buffer
		for name, e := range sv {
			if name != e.Name || e.Name == "" || e.Path == "" || e.Object == "" || e.Kind == "" {
				t.Fatalf("export %+v under %q", e, name)
			}
			for _, field := range []string{e.Name, e.Path, e.Kind, e.Namespace} {
				if strings.ContainsAny(field, "\t\n") {
					t.Fatalf("field %q of %+v", field, e)
				}
			}
			fmt.Fprintf(&b, "0x%08x\t%s\t%s\t%s\t%s\n", e.CRC, e.Name, e.Path, e.Kind, e.Namespace)
		}
		again, err := ParseSymvers(&b)
		if err != nil {
			t.Fatalf("written back: %v", err)
		}
		if !reflect.DeepEqual(again, sv) {
			t.Fatalf("reads differently once written back")
		}
	})
}

// sameAsReference fails unless the plain reader reads text as k (or
// refuses it too).
func sameAsReference(t *testing.T, text string, k *Kallsyms, err error) {
	t.Helper()
	ref, refErr := parseKallsymsReference(strings.NewReader(text))
	if (err == nil) != (refErr == nil) {
		t.Fatalf("ParseKallsyms: %v; the plain reader: %v", err, refErr)
	}
	if err != nil {
		return
	}
	if len(k.Objects) != len(ref.Objects) {
		t.Fatalf("%d objects; the plain reader %d", len(k.Objects), len(ref.Objects))
	}
	for o, tab := range ref.Objects {
		got := k.Objects[o]
		if got == nil || len(got.Syms) != len(tab.Syms) || (len(tab.Syms) > 0 && !reflect.DeepEqual(got.Syms, tab.Syms)) {
			t.Fatalf("object %s reads differently from the plain reader", o)
		}
		for i, s := range got.Syms {
			if idx := got.Lookup(s.Name); !slices.Contains(idx, i) {
				t.Fatalf("object %s: symbol %d (%s) is not indexed under its name", o, i, s.Name)
			}
		}
	}
}
