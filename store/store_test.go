package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
)

const rel = "6.1.0-56-amd64"

func fakeModule(t *testing.T, name, release string, livepatch bool, extra ...string) string {
	return testenv.FakeModule(t, name, release, livepatch, extra...)
}

func newStore(t *testing.T) *Store {
	s := New(t.TempDir())
	n := 0
	s.Now = func() time.Time { n++; return time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC) }
	return s
}

func names(es []Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return strings.Join(out, ",")
}

func TestInstallListUninstall(t *testing.T) {
	s := newStore(t)
	for _, n := range []string{"p1", "p2", "p3"} {
		if _, err := s.Install(rel, fakeModule(t, n, rel, true), InstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, problems, err := s.List(rel)
	if err != nil || len(problems) != 0 || names(got) != "p1,p2,p3" {
		t.Fatalf("List = %s, %v, %v", names(got), problems, err)
	}
	// Duplicate refused without force; with force it moves to the end.
	p2 := fakeModule(t, "p2", rel, true)
	if _, err := s.Install(rel, p2, InstallOptions{}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("duplicate install: %v", err)
	}
	if _, err := s.Install(rel, p2, InstallOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.List(rel)
	if names(got) != "p1,p3,p2" {
		t.Fatalf("after forced reinstall: %s", names(got))
	}
	if err := s.Uninstall(rel, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Uninstall(rel, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second uninstall: %v", err)
	}
	got, problems, _ = s.List(rel)
	if names(got) != "p3,p2" || len(problems) != 0 {
		t.Fatalf("after uninstall: %s %v", names(got), problems)
	}
	if _, err := os.Stat(filepath.Join(s.Root, rel, "patches", "p1.ko")); !os.IsNotExist(err) {
		t.Errorf("uninstalled file still present: %v", err)
	}
}

func TestInstallRefusals(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	random := filepath.Join(dir, "random.ko")
	os.WriteFile(random, []byte("not an elf"), 0o644)
	cases := map[string]struct {
		path string
		want string
	}{
		"not livepatch": {fakeModule(t, "plain", rel, false), "not a livepatch module"},
		"other kernel":  {fakeModule(t, "p", "6.1.0-99-amd64", true), "vermagic names 6.1.0-99-amd64, not " + rel},
		"random bytes":  {random, "not a kernel module"},
		"directory":     {dir, "is a directory"},
		"missing":       {filepath.Join(dir, "none.ko"), "no such file"},
	}
	for name, c := range cases {
		_, err := s.Install(rel, c.path, InstallOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root, rel, "patches")); len(ents) != 0 {
		t.Errorf("refused installs left files: %v", ents)
	}
}

// TestDamagedStore: leftovers of interrupted writes and files that do not
// match the index are reported and not listed.
func TestDamagedStore(t *testing.T) {
	s := newStore(t)
	for _, n := range []string{"good", "torn"} {
		if _, err := s.Install(rel, fakeModule(t, n, rel, true), InstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pdir := filepath.Join(s.Root, rel, "patches")
	os.WriteFile(filepath.Join(pdir, "torn.ko"), []byte("half"), 0o644)      // content lost mid-write
	os.WriteFile(filepath.Join(pdir, ".new.ko.123.tmp"), []byte("x"), 0o644) // temp file never renamed
	os.WriteFile(filepath.Join(pdir, "orphan.ko"), []byte("x"), 0o644)       // renamed, index not updated
	got, problems, err := s.List(rel)
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "good" {
		t.Errorf("usable patches = %s, want good", names(got))
	}
	text := fmt.Sprint(problems)
	for _, want := range []string{"torn.ko: content does not match", ".new.ko.123.tmp: leftover of an interrupted write", "orphan.ko: not in the index"} {
		if !strings.Contains(text, want) {
			t.Errorf("problems %s lack %q", text, want)
		}
	}
	// A damaged index disables the whole store for loading.
	os.WriteFile(filepath.Join(s.Root, rel, "index.json"), []byte(`{"version":1,"patc`), 0o644)
	got, problems, err = s.List(rel)
	if err != nil || len(got) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Reason, "nothing in this store is loaded") {
		t.Errorf("damaged index: %v %v %v", got, problems, err)
	}
}

func TestLoadSet(t *testing.T) {
	es := []Entry{{Name: "a"}, {Name: "b", Replace: true}, {Name: "c"}, {Name: "d", Replace: true}, {Name: "e"}}
	if got := names(LoadSet(es)); got != "d,e" {
		t.Errorf("LoadSet = %s", got)
	}
	if got := names(LoadSet(es[:1])); got != "a" {
		t.Errorf("LoadSet without replace = %s", got)
	}
}

type fakeLoader struct {
	loaded []string
	fail   map[string]bool
}

func (f *fakeLoader) Load(_ context.Context, path string) error {
	n := strings.TrimSuffix(filepath.Base(path), ".ko")
	if f.fail[n] {
		return fmt.Errorf("kernel refused %s", n)
	}
	f.loaded = append(f.loaded, n)
	return nil
}

func TestCrashLoopGuard(t *testing.T) {
	s := newStore(t)
	for _, n := range []string{"p1", "p2", "p3"} {
		if _, err := s.Install(rel, fakeModule(t, n, rel, true), InstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Boot 1: the machine dies while applying p2 (mark written, never
	// cleared).
	if err := s.MarkApplying(rel, "p2", "boot-1"); err != nil {
		t.Fatal(err)
	}
	// Boot 2 finds the stale mark: p2 is quarantined, the rest loads, one
	// failure is reported and its mark cleared.
	l := &fakeLoader{fail: map[string]bool{"p3": true}}
	var events []string
	failed, err := s.LoadAll(context.Background(), rel, l, BootOptions{BootID: "boot-2", Events: func(e BootEvent) {
		events = append(events, e.Action+":"+e.Patch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 || strings.Join(l.loaded, ",") != "p1" {
		t.Errorf("failed=%d loaded=%v", failed, l.loaded)
	}
	want := "quarantined:p2 loaded:p1 skipped:p2 failed:p3"
	if strings.Join(events, " ") != want {
		t.Errorf("events %v, want %s", events, want)
	}
	if marks, _ := s.Marks(rel); len(marks) != 0 {
		t.Errorf("marks left after a completed boot load: %v", marks)
	}
	q, _ := s.Quarantined(rel)
	if len(q) != 1 || q[0].Name != "p2" || !strings.Contains(q[0].Reason, "stopped while or shortly after applying") {
		t.Fatalf("quarantine = %+v", q)
	}
	// Boot 3: still quarantined until lifted.
	l = &fakeLoader{}
	s.LoadAll(context.Background(), rel, l, BootOptions{BootID: "boot-3"})
	if strings.Join(l.loaded, ",") != "p1,p3" {
		t.Errorf("boot 3 loaded %v", l.loaded)
	}
	if err := s.Unquarantine(rel, "p2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unquarantine(rel, "p2"); err == nil {
		t.Error("second unquarantine succeeded")
	}
	l = &fakeLoader{}
	s.LoadAll(context.Background(), rel, l, BootOptions{BootID: "boot-4"})
	if strings.Join(l.loaded, ",") != "p1,p2,p3" {
		t.Errorf("after unquarantine loaded %v", l.loaded)
	}
	// A forced reinstall also lifts a quarantine.
	s.QuarantinePatch(rel, "p1", "test")
	if _, err := s.Install(rel, fakeModule(t, "p1", rel, true), InstallOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if q, _ := s.Quarantined(rel); len(q) != 0 {
		t.Errorf("forced install kept quarantine %v", q)
	}
}

// TestMarkSurvivesUntilSettled: the mark exists during the settle time and
// is gone after it.
func TestMarkSurvivesUntilSettled(t *testing.T) {
	s := newStore(t)
	s.Install(rel, fakeModule(t, "p1", rel, true), InstallOptions{})
	var during []Mark
	_, err := s.LoadAll(context.Background(), rel, &fakeLoader{}, BootOptions{
		BootID: "b", Settle: 50 * time.Millisecond,
		Ready: func() { during, _ = s.Marks(rel) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 || during[0].Name != "p1" || during[0].BootID != "b" {
		t.Errorf("marks while settling = %+v", during)
	}
	if after, _ := s.Marks(rel); len(after) != 0 {
		t.Errorf("marks after settling = %+v", after)
	}
}
