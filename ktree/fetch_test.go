package ktree_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ktree"
)

func fileSHA(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// TestFetchSource: the linux-source package of a given version is fetched
// from the machine's apt sources into the cache, once: its tarball is the
// very file the installed package of that version has.
func TestFetchSource(t *testing.T) {
	k := testenv.RequireKernel(t)
	out, err := exec.Command("dpkg-query", "-S", k.SourceTar).Output()
	if err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: k.SourceTar, Package: "linux-source-6.1"})
	}
	pkg, _, _ := strings.Cut(strings.TrimSpace(string(out)), ":")
	ver, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	sources := filepath.Join(cache, "sources")
	var steps []string
	step := func(s string) { steps = append(steps, s) }
	mm := strings.TrimPrefix(pkg, "linux-source-")
	tar, err := ktree.FetchSource(context.Background(), mm, string(ver), sources, step)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileSHA(t, tar), fileSHA(t, k.SourceTar)) {
		t.Errorf("fetched %s differs from the installed %s of the same version %s", tar, k.SourceTar, ver)
	}
	steps = nil
	again, err := ktree.FetchSource(context.Background(), mm, string(ver), sources, step)
	if err != nil || again != tar || len(steps) != 0 {
		t.Errorf("second fetch: %s, %v, steps %q; want the cached %s and no step", again, err, steps, tar)
	}
	if _, err := ktree.FetchSource(context.Background(), mm, "0.0.1-1", t.TempDir(), step); err == nil || !strings.Contains(err.Error(), "apt-get download linux-source-"+mm+"=0.0.1-1") {
		t.Errorf("a version not in the apt sources: %v", err)
	}
}
