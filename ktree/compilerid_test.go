package ktree

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompilerIDRecord: a host compiler's identity is kept on disk and
// read back only while it is still true: the same answer as asking the
// compiler, and asked again once the driver changes, resolves elsewhere,
// or PATH differs.
func TestCompilerIDRecord(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	bin := t.TempDir()
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	driver := filepath.Join(bin, "kelpcc")
	write := func(comment string) {
		t.Helper()
		if err := os.WriteFile(driver, []byte("#!/bin/sh\n# "+comment+"\nexec "+gcc+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	ctx := t.Context()
	first, err := compilerID(ctx, nil, "kelpcc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, driver+":") {
		t.Fatalf("identity %q does not name the driver %s", first, driver)
	}
	stored, ok := storedCompilerID("kelpcc")
	if !ok || stored != first {
		t.Fatalf("stored identity %q, %v; want the one asked (%q)", stored, ok, first)
	}
	if again, err := compilerID(ctx, nil, "kelpcc"); err != nil || again != first {
		t.Fatalf("second identity %q, %v; want %q", again, err, first)
	}

	// The driver rewritten (another size, another time): the record no
	// longer holds, and the new answer names the new driver.
	time.Sleep(10 * time.Millisecond)
	write("second, longer")
	if _, ok := storedCompilerID("kelpcc"); ok {
		t.Fatal("the record of a rewritten driver was read back")
	}
	second, err := compilerID(ctx, nil, "kelpcc")
	if err != nil || second == first {
		t.Fatalf("identity after the driver changed: %q, %v; want a new one", second, err)
	}
	if stored, ok := storedCompilerID("kelpcc"); !ok || stored != second {
		t.Fatalf("stored identity after the change %q, %v; want %q", stored, ok, second)
	}

	// The name resolving to another driver (a symlink put in front).
	other := filepath.Join(t.TempDir(), "kelpcc")
	if err := os.WriteFile(other, []byte("#!/bin/sh\nexec "+gcc+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	front := t.TempDir()
	if err := os.Symlink(other, filepath.Join(front, "kelpcc")); err != nil {
		t.Fatal(err)
	}
	// Same record name (PATH is part of it) but another driver: moved
	// aside by renaming the first driver away.
	if err := os.Rename(driver, driver+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, driver); err != nil {
		t.Fatal(err)
	}
	if _, ok := storedCompilerID("kelpcc"); ok {
		t.Fatal("the record was read back though kelpcc resolves to another driver")
	}
	if third, err := compilerID(ctx, nil, "kelpcc"); err != nil || !strings.Contains(third, other+":") {
		t.Fatalf("identity through the symlink: %q, %v; want it to name %s", third, err, other)
	}

	// Another PATH: another record, none yet.
	t.Setenv("PATH", front+":"+os.Getenv("PATH"))
	if _, ok := storedCompilerID("kelpcc"); ok {
		t.Fatal("a record was read back under another PATH")
	}
}
