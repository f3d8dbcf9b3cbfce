package ktree

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDpkgOwner: the package that installed each kernel image and source
// tarball of the machine is the one dpkg-query -S names, and its version
// the one dpkg-query -W gives, read from the guessed package's listing
// and, with no listing, from dpkg-query -S; a file no package owns is
// refused.
func TestDpkgOwner(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	images, _ := filepath.Glob("/boot/vmlinuz-*")
	tars, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
	if len(images) == 0 || len(tars) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("no installed kernel image or linux-source tarball")
		}
		t.Skip("no installed kernel image or linux-source tarball (install linux-image-amd64 and linux-source)")
	}
	for _, path := range append(images, tars...) {
		out, err := exec.Command("dpkg-query", "-S", path).Output()
		if err != nil {
			t.Fatalf("dpkg-query -S %s: %v", path, err)
		}
		want, _, _ := strings.Cut(strings.TrimSpace(string(out)), ":")
		out, err = exec.Command("dpkg-query", "-W", "-f", "${Version}", want).Output()
		if err != nil || len(out) == 0 {
			t.Fatalf("dpkg-query -W %s: %q, %v", want, out, err)
		}
		wantVersion := string(out)
		saved := packageListing
		for _, lists := range []string{"the guessed package's listing", "no listing"} {
			if lists == "no listing" {
				packageListing = func(context.Context, string) (string, []string, error) { return "", nil, errors.New("no list") }
			}
			got, version, err := dpkgOwner(t.Context(), path)
			if err != nil || got != want || version != wantVersion {
				t.Errorf("owner of %s (%s): %q %q, %v; want %q %q", path, lists, got, version, err, want, wantVersion)
			}
		}
		packageListing = saved
	}
	if pkg, _, err := dpkgOwner(t.Context(), images[0]+"-none"); err == nil {
		t.Errorf("a file no package owns is owned by %s", pkg)
	}
}

// TestDpkgQueryRecord: dpkg-query's answers are kept under the state of
// dpkg's database and asked again whenever the status file, the updates
// journal or the diversions change, or the question differs; a failed
// query is not kept.
func TestDpkgQueryRecord(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	admin := t.TempDir()
	saved := dpkgAdmin
	dpkgAdmin = admin
	t.Cleanup(func() { dpkgAdmin = saved })
	for _, f := range []string{"status", "diversions"} {
		if err := os.WriteFile(filepath.Join(admin, f), []byte("Package: a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(admin, "updates"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A dpkg-query that counts its runs and answers with the count.
	bin := t.TempDir()
	count := filepath.Join(bin, "count")
	script := "#!/bin/sh\n[ \"$2\" = missing ] && exit 1\nn=$(($(cat " + count + " 2>/dev/null || echo 0)+1))\necho $n > " + count + "\necho \"answer-$n $*\"\n"
	if err := os.WriteFile(filepath.Join(bin, "dpkg-query"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	ask := func(want string, args ...string) {
		t.Helper()
		out, err := dpkgQuery(t.Context(), args...)
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("dpkg-query %v: %q, %v; want %q", args, out, err, want)
		}
	}
	ask("answer-1 -W pkg", "-W", "pkg")
	ask("answer-1 -W pkg", "-W", "pkg") // kept
	ask("answer-2 -L pkg", "-L", "pkg") // another question
	change := func(what string, f func() error) {
		t.Helper()
		time.Sleep(10 * time.Millisecond)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	change("status", func() error {
		return os.WriteFile(filepath.Join(admin, "status"), []byte("Package: a\nPackage: b\n"), 0o644)
	})
	ask("answer-3 -W pkg", "-W", "pkg")
	ask("answer-3 -W pkg", "-W", "pkg")
	change("updates", func() error { return os.WriteFile(filepath.Join(admin, "updates", "0000"), nil, 0o644) })
	ask("answer-4 -W pkg", "-W", "pkg")
	change("diversions", func() error {
		return os.WriteFile(filepath.Join(admin, "diversions"), []byte("/x\n/y\npkg\n"), 0o644)
	})
	ask("answer-5 -W pkg", "-W", "pkg")
	for range 2 {
		if out, err := dpkgQuery(t.Context(), "-W", "missing"); err == nil {
			t.Fatalf("a failing dpkg-query answered %q", out)
		}
	}
	ask("answer-5 -W pkg", "-W", "pkg")
}
