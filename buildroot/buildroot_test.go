package buildroot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSuiteOf(t *testing.T) {
	cases := map[string]string{
		"6.12.57+deb13-amd64":        "trixie",
		"6.12.117+deb13-cloud-amd64": "trixie",
		"6.1.0-56-amd64":             "bookworm",
		"6.1.0-57-cloud-amd64":       "bookworm",
		"6.12.95+deb12-amd64":        "bookworm",
		"6.12.9+deb13u1-rt-amd64":    "trixie",
	}
	for rel, want := range cases {
		if got, ok := SuiteOf(rel); !ok || got != want {
			t.Errorf("SuiteOf(%q) = %q, %v; want %q", rel, got, ok, want)
		}
	}
	for _, rel := range []string{"6.8.0-45-generic", "5.14.0-427.el9.x86_64", "6.12.57+deb99-amd64"} {
		if got, ok := SuiteOf(rel); ok {
			t.Errorf("SuiteOf(%q) = %q; want no Debian suite", rel, got)
		}
	}
}

func TestAptEntries(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "a.list")
	os.WriteFile(list, []byte("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb http://sec.example/debian-security bookworm-security main\n"), 0o644)
	got := aptEntries(list)
	if len(got) != 2 || got[0].uri != "http://mirror.example/debian" || got[0].suites[0] != "bookworm" || got[1].suites[0] != "bookworm-security" {
		t.Errorf("list entries %+v", got)
	}
	src := filepath.Join(dir, "b.sources")
	os.WriteFile(src, []byte("Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb-src\nURIs: http://x.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://s.example/debian-security\nSuites: bookworm-security\n"), 0o644)
	got = aptEntries(src)
	if len(got) != 2 || got[0].uri != "http://m.example/debian" || strings.Join(got[0].suites, " ") != "bookworm bookworm-updates" || got[1].uri != "http://s.example/debian-security" {
		t.Errorf("deb822 entries %+v", got)
	}
}

// TestCommandInRoot runs commands in the trixie build root make deps
// prepares: the root's own compiler answers, a bound host directory is
// at the same path, and the environment given reaches the command.
func TestCommandInRoot(t *testing.T) {
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	r := &Root{Dir: filepath.Join(dir, "trixie"), Suite: "trixie"}
	if _, err := os.Stat(filepath.Join(r.Dir, ".kelp-complete")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no trixie build root (make deps): %v", err)
		}
		t.Skipf("no trixie build root (make deps; CI would fail): %v", err)
	}
	ctx := context.Background()
	out, err := r.Run(ctx, "/", "gcc-14", "--version")
	if err != nil || !strings.Contains(out, "gcc-14 (Debian 14.") {
		t.Fatalf("gcc-14 in the root: %q, %v", out, err)
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), "buildroot-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	r.Bind(work)
	cmd := r.Command(ctx, work, []string{"KELP_TEST_VALUE=a b"}, "/bin/sh", "-c", `printf '%s' "$KELP_TEST_VALUE" > out; grep -h ^VERSION_CODENAME= /etc/os-release; pwd`)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if got := string(b); got != "VERSION_CODENAME=trixie\n"+work+"\n" {
		t.Errorf("in the root: %q; want trixie's os-release and the working directory %s", got, work)
	}
	if v, err := os.ReadFile(filepath.Join(work, "out")); err != nil || string(v) != "a b" {
		t.Errorf("file written in the bound directory: %q, %v", v, err)
	}
	var nilRoot *Root
	if b, err := nilRoot.Command(ctx, work, nil, "cat", "out").Output(); err != nil || string(b) != "a b" {
		t.Errorf("host command: %q, %v", b, err)
	}
}
