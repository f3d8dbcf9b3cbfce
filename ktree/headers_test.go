package ktree

import (
	"context"
	"os/exec"
	"testing"
)

func TestParseDep(t *testing.T) {
	for _, c := range []struct {
		in   string
		want debDep
	}{
		{"linux-kbuild-6.1 (>= 6.1.170-3)", debDep{"linux-kbuild-6.1", ">=", "6.1.170-3"}},
		{" linux-headers-6.1.0-47-common (= 6.1.170-3)", debDep{"linux-headers-6.1.0-47-common", "=", "6.1.170-3"}},
		{"linux-compiler-gcc-12-x86", debDep{"linux-compiler-gcc-12-x86", "", ""}},
		{"libc6:amd64 (<< 2.37)", debDep{"libc6", "<<", "2.37"}},
		{"gcc-12 (>= 12.2) | gcc", debDep{"gcc-12", ">=", "12.2"}},
	} {
		got, err := parseDep(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseDep(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"linux-kbuild-6.1 (>= 6.1.170-3", "linux-kbuild-6.1 (~ 1)", "linux-kbuild-6.1 (>=)"} {
		if d, err := parseDep(bad); err == nil {
			t.Errorf("parseDep(%q) = %+v, want an error", bad, d)
		}
	}
	if s := (debDep{"linux-kbuild-6.1", ">=", "6.1.170-3"}).String(); s != "linux-kbuild-6.1 (>= 6.1.170-3)" {
		t.Errorf("String() = %q", s)
	}
}

// TestVersionRelation checks the relations Debian's kernel headers use,
// in dpkg's order (a later point release, an epoch, a tilde).
func TestVersionRelation(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatalf("dpkg: %v (kelp fetches headers only on a Debian machine)", err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		a, op, b string
		want     bool
	}{
		{"6.1.192-3", ">=", "6.1.170-3", true},
		{"6.1.170-3", ">=", "6.1.170-3", true},
		{"6.1.170-2", ">=", "6.1.170-3", false},
		{"6.1.170-3", "=", "6.1.170-3", true},
		{"6.1.176-1", "=", "6.1.170-3", false},
		{"6.1.99-1", "<<", "6.1.170-3", true},
		{"1:6.1.1-1", ">>", "6.1.192-3", true},
		{"6.1.170-3~bpo12+1", "<=", "6.1.170-3", true},
	} {
		got, err := versionRelation(ctx, c.a, c.op, c.b)
		if err != nil || got != c.want {
			t.Errorf("%s %s %s = %v, %v; want %v", c.a, c.op, c.b, got, err, c.want)
		}
	}
	if _, err := versionRelation(ctx, "1", "~", "2"); err == nil {
		t.Error("relation ~: no error")
	}
}
