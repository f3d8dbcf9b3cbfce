package ktree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeps(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "kernel/sched"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := "cmd_kernel/sched/build_policy.o := gcc -c -o kernel/sched/build_policy.o kernel/sched/build_policy.c\n\n" +
		"source_kernel/sched/build_policy.o := kernel/sched/build_policy.c\n\n" +
		"deps_kernel/sched/build_policy.o := \\\n  include/linux/compiler-version.h \\\n    $(wildcard include/config/CC_VERSION_TEXT) \\\n" +
		"  kernel/sched/rt.c \\\n  kernel/sched/deadline.c \\\n\nkernel/sched/build_policy.o: $(deps_kernel/sched/build_policy.o)\n\n$(deps_kernel/sched/build_policy.o):\n"
	if err := os.WriteFile(filepath.Join(dir, "kernel/sched/.build_policy.o.cmd"), []byte(cmd), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := &Tree{Dir: dir}
	deps, err := tr.Deps("kernel/sched/build_policy.o")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kernel/sched/rt.c", "kernel/sched/deadline.c", "include/linux/compiler-version.h"} {
		if !deps[want] {
			t.Errorf("deps lack %s: %v", want, deps)
		}
	}
	if len(deps) != 3 {
		t.Errorf("deps %v; want 3 files", deps)
	}
	if _, err := tr.Deps("kernel/sched/fair.o"); err == nil {
		t.Error("a missing record was read")
	}
}

func TestUnpatchableUsers(t *testing.T) {
	if err := unpatchableUsers("include/linux/x.h", []string{"fs/a.c", "kernel/b.c"}); err != nil {
		t.Errorf("patchable users refused: %v", err)
	}
	err := unpatchableUsers("include/linux/x.h", []string{"fs/a.c", "lib/glob.c", "arch/x86/entry/vdso/vclock_gettime.c"})
	re, ok := err.(*RefusedError)
	if !ok || re.File != "include/linux/x.h" || !strings.Contains(re.Reason, "lib/glob.c, arch/x86/entry/vdso/vclock_gettime.c") ||
		!strings.Contains(re.Reason, "ftrace entry call") || !strings.Contains(re.Reason, "vDSO") || strings.Contains(re.Reason, "fs/a.c") {
		t.Errorf("refusal %v", err)
	}
}
