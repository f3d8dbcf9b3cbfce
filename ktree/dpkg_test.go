package ktree

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDpkgOwner: the package that installed each kernel image and source
// tarball of the machine is the one dpkg-query -S names, and its version
// the one dpkg-query -W gives, read from the guessed package's listing
// and, with no listing, from dpkg-query -S; a file no package owns is
// refused.
func TestDpkgOwner(t *testing.T) {
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
