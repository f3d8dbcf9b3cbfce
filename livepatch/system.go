// Package livepatch talks to the running kernel's livepatch core: what the
// system supports (Check), which patches are loaded and whose code runs
// (List), and applying and removing patches with their consistency-model
// transitions watched to the end (Load, Unload, Force). Everything goes
// through a System rooted at "/" in production and at a fake tree in unit
// tests. Nothing here prints: long operations report Events to a callback.
package livepatch

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/internal/sys"
)

// System is the running kernel as seen through /proc, /sys and /boot under
// Root.
type System struct {
	Root string
}

// Host is the machine kelp runs on.
var Host = System{Root: "/"}

func (s System) path(elem ...string) string {
	return filepath.Join(append([]string{s.Root}, elem...)...)
}

// readTrim reads a small pseudo-file and trims surrounding white space.
func (s System) readTrim(elem ...string) (string, error) {
	data, err := os.ReadFile(s.path(elem...))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

func (s System) readInt(elem ...string) (int64, error) {
	v, err := s.readTrim(elem...)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// Kernel returns the facts of the kernel (release, taint, boot id,
// command line) below Root.
func (s System) Kernel() sys.Kernel { return sys.Kernel{Root: s.Root} }

// Release returns the kernel release (uname -r).
func (s System) Release() (string, error) { return s.Kernel().Release() }
