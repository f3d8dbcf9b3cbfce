package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// binaries are kelp and kelp-package built as make build builds them, once
// per test run.
var binaries struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "kelp-test-bin-")
		if binaries.err != nil {
			return
		}
		for _, c := range []string{"kelp", "kelp-package"} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=1.2.3", "-o", filepath.Join(binaries.dir, c), "../"+c)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if binaries.out, binaries.err = cmd.CombinedOutput(); binaries.err != nil {
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatalf("build kelp: %v\n%s", binaries.err, binaries.out)
	}
	return binaries.dir
}

// withHelper puts kelp-package on PATH for kelp package run in this
// process.
func withHelper(t *testing.T, _ *fakeHost) {
	t.Helper()
	t.Setenv("PATH", buildBinaries(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
}

func tool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: name, Package: pkg})
	}
}

// TestLintian builds kelp's own package and a patch package with the
// binaries make build makes and runs lintian on both: no error, and every
// warning is one docs/cli.md justifies.
func TestLintian(t *testing.T) {
	tool(t, "lintian", "lintian")
	tool(t, "dpkg-deb", "dpkg")
	bin := buildBinaries(t)
	dist := t.TempDir()
	ko := testenv.FakeModule(t, "fix_cve", rel, true)
	for _, args := range [][]string{
		{"package", "--self", "-o", dist},
		{"package", ko, "-o", dist},
	} {
		cmd := exec.Command(filepath.Join(bin, "kelp"), args...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kelp %v: %v\n%s", args, err, out)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 2 {
		t.Fatalf("packages written: %v", debs)
	}
	justified := lintianJustified(t)
	cmd := exec.Command("lintian", append([]string{"--no-cfg", "--no-tag-display-limit"}, debs...)...)
	out, err := cmd.CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	tags := regexp.MustCompile(`^([EWIPX]): ([^:]+): (\S+)`)
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := tags.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		seen++
		switch m[1] {
		case "E":
			t.Errorf("lintian error: %s", sc.Text())
		case "W":
			if !justified[m[3]] {
				t.Errorf("lintian warning not justified in docs/cli.md: %s", sc.Text())
			}
		}
	}
	// lintian's own verdict (it fails on errors) agrees.
	if err != nil {
		t.Errorf("lintian: %v (%d tags)\n%s", err, seen, out)
	}
}

// lintianJustified reads the lintian warnings docs/cli.md justifies: the
// `tag` at the start of each item of its "Lintian" section.
func lintianJustified(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Lintian\n")
	if !ok {
		t.Fatal(`docs/cli.md has no "## Lintian" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^- `([a-z0-9-]+)`").FindAllStringSubmatch(section, -1) {
		out[m[1]] = true
	}
	if len(out) == 0 {
		t.Fatal("docs/cli.md justifies no lintian warning")
	}
	return out
}
