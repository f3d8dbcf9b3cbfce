package ktree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/refusal"
)

// TestReadDeps reads a dependency file as gcc's -MMD writes it: every
// file once, continuation lines joined.
func TestReadDeps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "build_policy.o.d")
	d := "/cache/objects/k/build_policy.o: kernel/sched/build_policy.c \\\n include/linux/compiler-version.h \\\n" +
		"  kernel/sched/rt.c kernel/sched/deadline.c \\\n include/linux/compiler-version.h\n"
	if err := os.WriteFile(p, []byte(d), 0o644); err != nil {
		t.Fatal(err)
	}
	deps, err := readDeps(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/sched/build_policy.c", "include/linux/compiler-version.h", "kernel/sched/rt.c", "kernel/sched/deadline.c"}
	if strings.Join(deps, " ") != strings.Join(want, " ") {
		t.Errorf("deps %q; want %q", deps, want)
	}
	if err := os.WriteFile(p, []byte("x.o:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readDeps(p); err == nil {
		t.Error("a dependency file naming no file was read")
	}
}

func TestUnpatchableUsers(t *testing.T) {
	if err := unpatchableUsers("include/linux/x.h", []string{"fs/a.c", "kernel/b.c"}); err != nil {
		t.Errorf("patchable users refused: %v", err)
	}
	err := unpatchableUsers("include/linux/x.h", []string{"fs/a.c", "lib/glob.c", "arch/x86/entry/vdso/vclock_gettime.c"})
	re, ok := err.(*refusal.Error)
	if !ok || len(re.Reasons) != 1 {
		t.Fatalf("refusal %v", err)
	}
	r := re.Reasons[0]
	if r.Unit != "include/linux/x.h" || !strings.Contains(r.Reason, "lib/glob.c, arch/x86/entry/vdso/vclock_gettime.c") ||
		!strings.Contains(r.Reason, "ftrace entry call") || !strings.Contains(r.Reason, "vDSO") || strings.Contains(r.Reason, "fs/a.c") || r.Hint == "" {
		t.Errorf("refusal %v", err)
	}
}
