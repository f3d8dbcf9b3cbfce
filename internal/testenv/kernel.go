// Package testenv locates the Debian kernel that kelp's tests run against
// (image, headers, source, config) and keeps what the tests derive from it
// (an extracted source tree, a prepared tree, compiled modules) in a cache.
//
// The kernel triple is installed by scripts/install-deps.sh. Nothing here
// downloads anything; a missing piece is reported with the package that
// provides it.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/ktree"
)

// Kernel is one installed Debian kernel: image, modules, headers, config and
// the matching source tarball.
type Kernel struct {
	Release    string // e.g. 6.1.0-56-amd64
	Image      string // /boot/vmlinuz-<release>
	Config     string // /boot/config-<release>
	ModulesDir string // /lib/modules/<release>
	Headers    string // kbuild directory for out-of-tree modules
	SourceTar  string // /usr/src/linux-source-6.1.tar.xz
	// BuildRoot is the Debian build root (buildroot.Root.Dir) holding
	// the kernel's files and the compiler its modules are built with
	// (Debian 13's gcc-14 on a Debian 12 host); "" for the host's own.
	BuildRoot string
}

// ErrMissing reports that a piece of the test environment is not installed.
type ErrMissing struct {
	What    string
	Package string
}

func (e *ErrMissing) Error() string {
	return fmt.Sprintf("%s not found (install %s: make deps)", e.What, e.Package)
}

// EnvKernel names the environment variable that selects the test kernel
// release; the default is the installed 6.1 amd64 kernel of the installed
// linux-source-6.1's version, else the newest with headers.
const EnvKernel = "KELP_TEST_KERNEL"

// root lets unit tests point discovery at a fake tree.
var root = "/"

// DefaultKernel returns the kernel the tests boot.
func DefaultKernel() (*Kernel, error) {
	if rel := os.Getenv(EnvKernel); rel != "" {
		return kernelFor(rel)
	}
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-6.1.*-amd64"))
	if len(images) == 0 {
		return nil, &ErrMissing{What: "kernel image /boot/vmlinuz-6.1.*-amd64", Package: "linux-image-6.1.0-<abi>-amd64"}
	}
	rels := make([]string, 0, len(images))
	for _, img := range images {
		rels = append(rels, strings.TrimPrefix(filepath.Base(img), "vmlinuz-"))
	}
	sort.Slice(rels, func(i, j int) bool { return abiNumber(rels[i]) > abiNumber(rels[j]) })
	// The triple make deps installed comes first: the kernel whose image
	// package has the installed source's version. KELP_KERNEL_VERSION
	// pins an older triple beside a newer image, whose source is gone.
	if src := packageVersion("linux-source-6.1"); src != "" {
		ofSource := map[string]bool{}
		for _, rel := range rels {
			ofSource[rel] = packageVersion("linux-image-"+rel) == src
		}
		sort.SliceStable(rels, func(i, j int) bool { return ofSource[rels[i]] && !ofSource[rels[j]] })
	}
	var firstErr error
	for _, rel := range rels {
		k, err := kernelFor(rel)
		if err == nil {
			return k, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// abiNumber extracts N from 6.1.0-N-amd64 for ordering.
func abiNumber(rel string) int {
	parts := strings.Split(rel, "-")
	if len(parts) < 2 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// packageVersion returns the installed version of a Debian package, ""
// when it is not installed or unknown (unit tests with a fake root
// replace it).
var packageVersion = func(pkg string) string {
	v, _ := ktree.DpkgVersion(context.Background(), pkg)
	return v
}

func kernelFor(rel string) (*Kernel, error) {
	k := &Kernel{
		Release:    rel,
		Image:      filepath.Join(root, "boot", "vmlinuz-"+rel),
		Config:     filepath.Join(root, "boot", "config-"+rel),
		ModulesDir: filepath.Join(root, "lib", "modules", rel),
		Headers:    filepath.Join(root, "usr", "src", "linux-headers-"+rel),
		SourceTar:  filepath.Join(root, "usr", "src", "linux-source-6.1.tar.xz"),
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// check reports the first of k's files that is missing, with the package
// that provides it.
func (k *Kernel) check() error {
	rel := k.Release
	checks := []struct{ path, what, pkg string }{
		{k.Image, "kernel image " + k.Image, "linux-image-" + rel},
		{k.Config, "kernel config " + k.Config, "linux-image-" + rel},
		{filepath.Join(k.ModulesDir, "modules.dep"), "module index " + k.ModulesDir + "/modules.dep", "linux-image-" + rel},
		{filepath.Join(k.Headers, "Makefile"), "kernel headers " + k.Headers, "linux-headers-" + rel},
		{k.SourceTar, "kernel source " + k.SourceTar, "linux-source-" + strings.Join(strings.SplitN(rel, ".", 3)[:2], ".")},
	}
	for _, c := range checks {
		if _, err := os.Stat(c.path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return &ErrMissing{What: c.what, Package: c.pkg}
			}
			return fmt.Errorf("test kernel %s: %w", rel, err)
		}
	}
	return nil
}
