package ktree

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSourceHead(t *testing.T) {
	for _, c := range []struct {
		what, src string
		lines     int // 0: no head
	}{
		{"includes", "// SPDX-License-Identifier: GPL-2.0\n#include <linux/fs.h>\n#include \"internal.h\"\n\nstatic int x;\n", 4},
		{"license block and pr_fmt", "/*\n * linux/kernel/sys.c\n */\n\n#define pr_fmt(fmt) KBUILD_MODNAME \": \" fmt\n#include <linux/module.h>\n# include <linux/init.h>\n#undef FOO\nint y;\n", 8},
		{"stops at a conditional", "#include <linux/fs.h>\n#ifdef CONFIG_X\n#include <linux/x.h>\n#endif\n", 1},
		{"stops at a continued define", "#include <linux/fs.h>\n#define A(x) \\\n\t(x)\n#include <linux/y.h>\n", 1},
		{"stops at code after a comment", "#include <linux/fs.h>\n/* c */ int z;\n", 1},
		{"stops at a comment after a directive", "#include <linux/fs.h>\n#include <linux/y.h> /* why\n   it is */\n", 1},
		{"defines only", "#define A 1\n#define B 2\nint a;\n", 0},
		{"nothing before code", "int a;\n#include <linux/fs.h>\n", 0},
		{"includes up to the end, the last line unterminated", "#include <linux/fs.h>\n#include <linux/y.h>", 1},
		{"not a directive", "#includes <x>\n", 0},
	} {
		head, lines := sourceHead(c.src)
		if lines != c.lines {
			t.Errorf("%s: %d lines (%q), want %d", c.what, lines, head, c.lines)
			continue
		}
		n := 0
		for _, ch := range head {
			if ch == '\n' {
				n++
			}
		}
		if n != lines || c.src[:len(head)] != head {
			t.Errorf("%s: head %q is not the source's first %d lines", c.what, head, lines)
		}
	}
}

func TestPchFlags(t *testing.T) {
	flags := "gcc -Wp,-MMD,fs/proc/.cmdline.o.d -nostdinc -I./include -include ./include/linux/compiler-version.h -include ./include/linux/kconfig.h -O2 -include ./include/linux/compiler_types.h -D__KERNEL__"
	got, forced := pchFlags(flags)
	if want := "gcc  -nostdinc -I./include -O2 -D__KERNEL__"; got != want {
		t.Errorf("flags %q, want %q", got, want)
	}
	if len(forced) != 3 || forced[0] != "./include/linux/compiler-version.h" || forced[2] != "./include/linux/compiler_types.h" {
		t.Errorf("forced includes %q", forced)
	}
}

// TestHeadHint: a patched compile waits for its original's cache entry
// only where a head of its source was proved and is still where it was
// proved, and the patched copy starts with that head.
func TestHeadHint(t *testing.T) {
	tr := &Tree{Dir: t.TempDir()}
	src := "#include <linux/fs.h>\n\nint f(void) { return 1; }\n"
	patched := strings.Replace(src, "1;", "2;", 1)
	head, _ := sourceHead(src)
	if tr.headHint("fs/a.o", head, patched) {
		t.Error("a hint before any head was proved")
	}
	proved := filepath.Join(t.TempDir(), "pch-x")
	if err := os.MkdirAll(proved, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(tr.hintFile("fs/a.o", head)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tr.hintFile("fs/a.o", head), []byte(proved), 0o644); err != nil {
		t.Fatal(err)
	}
	if tr.headHint("fs/a.o", head, patched) {
		t.Error("a hint while the head's directory has no proved marker")
	}
	if err := os.WriteFile(filepath.Join(proved, pchProved), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !tr.headHint("fs/a.o", head, patched) {
		t.Error("no hint for a proved head")
	}
	if tr.headHint("fs/a.o", head, "#include <linux/mm.h>\n"+patched) {
		t.Error("a hint for a copy whose head changed")
	}
	if err := os.RemoveAll(proved); err != nil {
		t.Fatal(err)
	}
	if tr.headHint("fs/a.o", head, patched) {
		t.Error("a hint after the head's entry was removed")
	}
}

// TestPruneHeads: the object cache keeps the precompiled heads used last;
// a head not to be used (no precompiled file left) stays, as the mark.
func TestPruneHeads(t *testing.T) {
	cache := t.TempDir()
	base := time.Now().Add(-time.Hour)
	var dirs []string
	for i := range 6 {
		dir := filepath.Join(cache, fmt.Sprintf("entry%d", i), "pch-x")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "head.h.gch"), []byte("gch"), 0o644); err != nil {
			t.Fatal(err)
		}
		used := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(dir, used, used); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	failed := filepath.Join(cache, "entry9", "pch-y")
	if err := os.MkdirAll(failed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(failed, pchFailed), []byte("why\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pruneHeads(cache, 4)
	for i, dir := range dirs {
		if kept := fileExists(dir); kept != (i >= 2) {
			t.Errorf("head used %d minutes after the first: kept %v", i, kept)
		}
	}
	if !fileExists(filepath.Join(failed, pchFailed)) {
		t.Error("the mark of a head not to be used was removed")
	}
}

// TestRebuilds counts an entry's rebuilds, each call noting one more, and
// counts none where it cannot note them.
func TestRebuilds(t *testing.T) {
	entry := t.TempDir()
	for want := range 4 {
		if got := rebuilds(entry); got != want {
			t.Errorf("call %d: %d rebuilds noted before it, want %d", want+1, got, want)
		}
	}
	if got := rebuilds(filepath.Join(entry, "missing")); got != 0 {
		t.Errorf("an entry that is not there: %d rebuilds, want 0", got)
	}
}
