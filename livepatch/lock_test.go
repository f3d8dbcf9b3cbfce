package livepatch

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUnloadingMark: while one unload of a patch runs, a second is told
// so; the mark goes with the unload and leaves no file behind.
func TestUnloadingMark(t *testing.T) {
	s := System{Root: t.TempDir()}
	if err := os.MkdirAll(s.path("run"), 0o755); err != nil {
		t.Fatal(err)
	}
	done, busy := s.unloading("fix_a")
	if busy || done == nil {
		t.Fatalf("first unload: busy %v", busy)
	}
	if _, busy := s.unloading("fix_a"); !busy {
		t.Error("a second unload of the same patch was not told the first runs")
	}
	other, busy := s.unloading("fix_b")
	if busy {
		t.Error("an unload of another patch was held up")
	}
	other()
	done()
	again, busy := s.unloading("fix_a")
	if busy {
		t.Fatal("the mark outlived its unload")
	}
	again()
	if left, _ := filepath.Glob(s.path("run", "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
