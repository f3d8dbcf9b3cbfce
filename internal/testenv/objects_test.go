package testenv

import (
	"context"
	"debug/elf"
	"path"
	"strings"
	"testing"
)

func TestKernelObjectSet(t *testing.T) {
	names := KernelObjectSet()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
		if path.Clean(n) != n || !strings.HasSuffix(n, ".o") {
			t.Errorf("%q is not a clean object path", n)
		}
	}
	if len(names) < 300 {
		t.Errorf("%d objects, want at least 300", len(names))
	}
}

func TestObjects(t *testing.T) {
	k := RequireKernel(t)
	objs, err := k.Objects(context.Background(), []string{"kernel/range.o", "drivers/block/loop.o"})
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].Module || !objs[1].Module {
		t.Errorf("module flags %v %v, want false true", objs[0].Module, objs[1].Module)
	}
	for _, o := range objs {
		f, err := elf.Open(o.Path)
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		// -ffunction-sections puts each function in its own section.
		n := 0
		for _, s := range f.Sections {
			if strings.HasPrefix(s.Name, ".text.") {
				n++
			}
		}
		f.Close()
		if n < 2 {
			t.Errorf("%s has %d .text.* sections; built without %s?", o.Name, n, ObjectFlags)
		}
	}
	if _, err := k.Objects(context.Background(), []string{"../etc/passwd.o"}); err == nil {
		t.Errorf("a path outside the tree was accepted")
	}
}
