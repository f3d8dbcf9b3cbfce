package ktree

import (
	"context"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/refusal"
)

func TestParsePatch(t *testing.T) {
	p, err := ParsePatch([]byte("commit text\n--- a/fs/b.c\n+++ b/fs/b.c\n@@ -1 +1 @@\n-x\n+y\n--- src.orig/fs/a.c\t2024\n+++ src/fs/a.c\t2024\n@@ -1 +1 @@\n--- removed\n+++ added\n-- \n2.39\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Paths(), " "); got != "fs/a.c fs/b.c" {
		t.Errorf("paths = %q", got)
	}
	if h := p.File("fs/a.c").Hunks[0]; len(h.Old) != 1 || h.Old[0] != "-- removed\n" || h.New[0] != "++ added\n" {
		t.Errorf("hunk = %+v", h)
	}
	for _, bad := range []string{
		"--- a/x.c\n+++ b/../x.c\n@@ -1 +1 @@\n-a\n+b\n",
		"--- /dev/null\n+++ b/new.c\n@@ -0,0 +1 @@\n+a\n",
		"--- a/x.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n",
		"",
	} {
		if _, err := ParsePatch([]byte(bad)); err == nil {
			t.Errorf("ParsePatch(%q) accepted", bad)
		}
	}
}

func TestApply(t *testing.T) {
	src := "a\nb\nc\nd\ne\nf\n"
	p, err := ParsePatch([]byte("--- a/x.c\n+++ b/x.c\n@@ -2,2 +2,3 @@\n b\n-c\n+C\n+C2\n@@ -5,1 +6,1 @@\n-e\n+E\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := p.File("x.c")
	got, err := f.Apply(src, false)
	if err != nil || got != "a\nb\nC\nC2\nd\nE\nf\n" {
		t.Errorf("Apply = %q, %v", got, err)
	}
	// A hunk whose line number is off is found by its context.
	got, err = f.Apply("0\n"+src, false)
	if err != nil || got != "0\na\nb\nC\nC2\nd\nE\nf\n" {
		t.Errorf("shifted Apply = %q, %v", got, err)
	}
	if _, err := f.Apply("q\n", false); err == nil {
		t.Error("a hunk that does not match was applied")
	}
}

func TestLineGuards(t *testing.T) {
	src := "1\n2\n3\n4\n5\n6\n7\n"
	p, err := ParsePatch([]byte("--- a/x.c\n+++ b/x.c\n@@ -2,3 +2,4 @@\n 2\n+2b\n 3\n 4\n@@ -6,2 +7,1 @@\n-6\n 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.File("x.c").Apply(src, true)
	want := "1\n2\n2b\n#line 3 \"x.c\"\n3\n4\n5\n#line 7 \"x.c\"\n7\n"
	if err != nil || got != want {
		t.Errorf("guarded Apply = %q, %v; want %q", got, err, want)
	}
	// No directive after a continued macro line.
	p, _ = ParsePatch([]byte("--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,2 @@\n-#define A 1 \\\n+#define A 2 \\\n 	+ 1\n"))
	got, _ = p.File("x.c").Apply("#define A 1 \\\n\t+ 1\n", true)
	if strings.Contains(got, "#line") {
		t.Errorf("directive inside a macro: %q", got)
	}
}

func TestMerge(t *testing.T) {
	a, _ := ParsePatch([]byte("--- a/x.c\n+++ b/x.c\n@@ -5 +5 @@\n-e\n+E\n"))
	b, _ := ParsePatch([]byte("--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+A\n--- a/y.c\n+++ b/y.c\n@@ -1 +1 @@\n-y\n+Y\n"))
	m := Merge(a, b)
	got, err := m.File("x.c").Apply("a\nb\nc\nd\ne\n", false)
	if err != nil || got != "A\nb\nc\nd\nE\n" || len(m.Files) != 2 {
		t.Errorf("merged = %q, %v (%d files)", got, err, len(m.Files))
	}
}

func TestOwnerAndFlags(t *testing.T) {
	cmd := `gcc -Wp,-MMD,fs/ext4/.inode.o.d -I./include -DMODULE -DKBUILD_BASENAME='"inode"' -DKBUILD_MODNAME='"ext4"' -c -o fs/ext4/inode.o fs/ext4/inode.c; ./tools/objtool/objtool --orc fs/ext4/inode.o`
	if o := OwnerOf(cmd); o != "ext4" {
		t.Errorf("owner = %q", o)
	}
	if o := OwnerOf(strings.Replace(cmd, " -DMODULE", "", 1)); o != Vmlinux {
		t.Errorf("built-in owner = %q", o)
	}
	flags, post, kobj, ksrc, err := compileFlags(cmd, "fs/ext4/inode.o", "fs/ext4/inode.c")
	if err != nil || strings.Contains(flags, " -c ") || post != "./tools/objtool/objtool --orc " || kobj != "fs/ext4/inode.o" || ksrc != "fs/ext4/inode.c" {
		t.Errorf("compileFlags = %q, %q, %q, %q, %v", flags, post, kobj, ksrc, err)
	}
	// An object another directory's Makefile builds keeps that
	// Makefile's name for it.
	kvm := `gcc -Wp,-MMD,arch/x86/kvm/../../../virt/kvm/.kvm_main.o.d -DMODULE -DKBUILD_MODNAME='"kvm"' -c -o arch/x86/kvm/../../../virt/kvm/kvm_main.o arch/x86/kvm/../../../virt/kvm/kvm_main.c; ./tools/objtool/objtool --orc arch/x86/kvm/../../../virt/kvm/kvm_main.o`
	_, post, kobj, ksrc, err = compileFlags(kvm, "virt/kvm/kvm_main.o", "virt/kvm/kvm_main.c")
	if err != nil || post != "./tools/objtool/objtool --orc " || kobj != "arch/x86/kvm/../../../virt/kvm/kvm_main.o" || ksrc != "arch/x86/kvm/../../../virt/kvm/kvm_main.c" || OwnerOf(kvm) != "kvm" {
		t.Errorf("compileFlags of kvm_main = %q, %q, %q, %v", post, kobj, ksrc, err)
	}
	if _, _, _, _, err := compileFlags(kvm, "virt/kvm/eventfd.o", "virt/kvm/eventfd.c"); err == nil {
		t.Error("compileFlags took kvm_main's command for eventfd.o")
	}
	if got, want := overlayIncludes(" -I./include -I./arch/x86/include", "/w/b"), " -I'/w/b/include' -I./include -I'/w/b/arch/x86/include' -I./arch/x86/include"; got != want {
		t.Errorf("overlay = %q", got)
	}
}

func TestRefusedPaths(t *testing.T) {
	tr := &Tree{}
	for _, f := range []string{"lib/string.c", "arch/x86/entry/vdso/vma.c", "arch/x86/boot/main.c", "arch/x86/kernel/head_64.S", "Makefile"} {
		p, err := ParsePatch([]byte("--- a/" + f + "\n+++ b/" + f + "\n@@ -1 +1 @@\n-a\n+b\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := tr.Objects(context.Background(), p); err == nil {
			t.Errorf("%s accepted", f)
		} else if _, ok := err.(*refusal.Error); !ok {
			t.Errorf("%s: %v is not a refusal", f, err)
		}
	}
}
