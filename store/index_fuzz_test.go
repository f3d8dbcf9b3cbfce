package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzIndex: whatever index.json holds, List never fails on it and never
// panics: a damaged index is one problem line, and every patch it does
// return is a file inside the release's patches directory whose content
// matches its recorded digest.
func FuzzIndex(f *testing.F) {
	f.Add(`{"version":1,"next_seq":2,"patches":[{"name":"fix","file":"patches/fix.ko","sha256":"x","seq":1}]}`)
	f.Add(`{"version":1,"patches":[{"name":"a","file":"../../etc/passwd"}]}`)
	f.Add(`{"version":1,"patches":[{"name":"a","file":"patches/a.ko"},{"name":"a","file":"patches/a.ko"}]}`)
	f.Add(`{"version":2}`)
	f.Add(`not json`)
	const release = "6.1.0-56-amd64"
	f.Fuzz(func(t *testing.T, index string) {
		s := New(t.TempDir())
		dir := filepath.Join(s.Root, release, "patches")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		module := []byte("module bytes")
		if err := os.WriteFile(filepath.Join(dir, "fix.ko"), module, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Root, release, "index.json"), []byte(index), 0o644); err != nil {
			t.Fatal(err)
		}
		entries, problems, err := s.List(release)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, p := range problems {
			if strings.Contains(p.String(), "\n") || p.Reason == "" {
				t.Fatalf("problem %q", p.String())
			}
		}
		for _, e := range entries {
			p := s.Path(release, e)
			if filepath.Dir(p) != dir {
				t.Fatalf("entry %q points outside the store: %s", e.Name, p)
			}
			if e.SHA256 != hexSum(module) {
				t.Fatalf("entry %q returned with digest %q", e.Name, e.SHA256)
			}
		}
	})
}
