package ktree

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPrehash: files prehash hashed are not read again by fileSums while
// their inodes are as they were; a file changed since (a new inode, or
// new bytes) is read, a file not settled is not hashed ahead, and
// fileSums without inode states reads every file.
func TestPrehash(t *testing.T) {
	dir := t.TempDir()
	tree := &Tree{Dir: dir}
	names := []string{"a.h", "b.h", "c.h", "d.h"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("/* "+n+" */\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := settle
	t.Cleanup(func() { settle = old })
	settle = time.Hour
	tree.prehash(names)
	n := 0
	tree.hashed.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d files hashed ahead that changed a moment ago", n)
	}
	settle = 0
	tree.prehash(names)
	// c.h gets new bytes in place, d.h is replaced by a new file.
	if err := os.WriteFile(filepath.Join(dir, "c.h"), []byte("/* changed */\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d.h.new"), []byte("/* d.h */\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "d.h.new"), filepath.Join(dir, "d.h")); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	sigs := make([]string, len(names))
	for i, n := range names {
		sigs[i], _ = statSig(filepath.Join(dir, n), now)
	}
	before := filesHashed.Load()
	sums, errs := tree.fileSums(names, sigs)
	if got := filesHashed.Load() - before; got != 2 {
		t.Errorf("%d files read; want 2 (c.h and d.h, changed since they were hashed)", got)
	}
	before = filesHashed.Load()
	again, _ := tree.fileSums(names, nil)
	if got := filesHashed.Load() - before; got != int64(len(names)) {
		t.Errorf("%d files read without inode states; want %d", got, len(names))
	}
	for i, n := range names {
		want, err := fileSum(filepath.Join(dir, n))
		if errs[i] != nil || err != nil || sums[i] != want || again[i] != want {
			t.Errorf("%s: sum %s (%v), read again %s; want %s (%v)", n, sums[i], errs[i], again[i], want, err)
		}
	}
}
