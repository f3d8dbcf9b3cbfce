package build

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
)

// TestImageBuildID: the build id kelp reads from a Debian kernel image
// (xz on 6.1, zstd on 6.12) is the one the booted kernel reports in
// /sys/kernel/notes (the kelp symbols dump taken in the VM records it).
func TestImageBuildID(t *testing.T) {
	kernels := map[string]func() (*testenv.Kernel, error){
		"6.1":  func() (*testenv.Kernel, error) { return testenv.RequireKernel(t), nil },
		"6.12": func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") },
	}
	for name, get := range kernels {
		t.Run(name, func(t *testing.T) {
			k := testenv.RequireKernelOf(t, get)
			dump, err := os.ReadFile(ksymtest.KallsymsPath(t, k))
			if err != nil {
				t.Fatal(err)
			}
			hdr, ok, err := ksym.ReadDumpHeader(dump)
			if err != nil || !ok || hdr.BuildID == "" {
				t.Fatalf("dump of %s: header %+v, %v", k.Release, hdr, err)
			}
			id, err := imageBuildID(context.Background(), k.Image)
			if err != nil {
				t.Fatal(err)
			}
			if id != hdr.BuildID {
				t.Errorf("%s: build id %q, the booted kernel's is %q", k.Image, id, hdr.BuildID)
			}
			cache := t.TempDir()
			for range 2 {
				if got, err := cachedImageBuildID(context.Background(), k.Image, cache); err != nil || got != id {
					t.Errorf("cached build id %q, %v; want %q", got, err, id)
				}
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte(strings.Repeat("x", 4096))} {
		if _, err := bzPayload(bad); err == nil {
			t.Errorf("bzPayload accepted %d bytes without a setup header", len(bad))
		}
	}
}
