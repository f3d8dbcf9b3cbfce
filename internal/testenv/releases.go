package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/buildroot"
)

// EnvKernel13 selects the Debian 13 kernel release the tests build for and
// boot (default: the newest 6.12 generic kernel in the trixie build root).
const EnvKernel13 = "KELP_TEST_KERNEL_13"

// Debian13Kernel returns the Debian 13 kernel of flavour ("amd64" or
// "cloud-amd64") whose packages make deps put into the trixie build root
// (buildroot.Root.Kernel): image, modules, config, headers and source
// all from that root.
func Debian13Kernel(flavour string) (*Kernel, error) {
	dir, err := buildroot.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "trixie")
	rel := os.Getenv(EnvKernel13)
	if rel != "" && flavour != "amd64" {
		rel = strings.TrimSuffix(rel, "-amd64") + "-" + flavour
	}
	if rel == "" {
		images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-6.12.*+deb13-"+flavour))
		if len(images) == 0 {
			return nil, &ErrMissing{What: "Debian 13 kernel image " + filepath.Join(root, "boot", "vmlinuz-6.12.*+deb13-"+flavour), Package: "linux-image-6.12.<n>+deb13-" + flavour + " in the trixie build root"}
		}
		sort.Slice(images, func(i, j int) bool { return patchLevel(images[i]) > patchLevel(images[j]) })
		rel = strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	}
	r := &buildroot.Root{Dir: root, Suite: "trixie"}
	bk := r.Files(rel)
	k := &Kernel{Release: rel, Image: bk.Image, Config: bk.Config, ModulesDir: bk.ModulesDir, Headers: bk.Headers, SourceTar: bk.SourceTar}
	if buildroot.HostSuite() != "trixie" {
		k.BuildRoot = root
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// patchLevel extracts N from .../vmlinux-6.12.N+deb13-... for ordering.
func patchLevel(image string) int {
	rel := strings.TrimPrefix(filepath.Base(image), "vmlinuz-")
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 3 {
		return -1
	}
	n := 0
	fmt.Sscanf(parts[2], "%d", &n)
	return n
}

// Cloud61Kernel returns Debian 12's cloud kernel of the same ABI as the
// generic test kernel: its headers installed on the host, its image
// package unpacked by make deps into the test cache (images/<release>).
func Cloud61Kernel() (*Kernel, error) {
	g, err := DefaultKernel()
	if err != nil {
		return nil, err
	}
	rel := strings.TrimSuffix(g.Release, "-amd64") + "-cloud-amd64"
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	img := filepath.Join(cache, "images", rel)
	k := &Kernel{
		Release:    rel,
		Image:      filepath.Join(img, "boot", "vmlinuz-"+rel),
		Config:     filepath.Join(img, "boot", "config-"+rel),
		ModulesDir: filepath.Join(img, "lib", "modules", rel),
		Headers:    filepath.Join(root, "usr", "src", "linux-headers-"+rel),
		SourceTar:  g.SourceTar,
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// RequireKernelOf returns the kernel find locates; when it is not there
// the test fails under CI and is skipped elsewhere.
func RequireKernelOf(t testing.TB, find func() (*Kernel, error)) *Kernel {
	t.Helper()
	k, err := find()
	if err != nil {
		Missing(t, err)
	}
	return k
}
