// Package livepatch talks to the running kernel's livepatch core: what the
// system supports (Check), which patches are loaded and in what state, and
// (later) loading, transitions and unloading. Everything is read through a
// System rooted at "/" in production and at a fake tree in unit tests.
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

// Release returns the kernel release (uname -r).
func (s System) Release() (string, error) {
	rel, err := s.readTrim("proc", "sys", "kernel", "osrelease")
	if err != nil && s.Root == "/" {
		return sys.Release()
	}
	return rel, err
}

// Patch is a livepatch registered with the kernel
// (/sys/kernel/livepatch/<name>).
type Patch struct {
	Name       string `json:"name"`
	Enabled    bool   `json:"enabled"`
	Transition bool   `json:"transition"`
}

// Patches lists the registered livepatches. A kernel without livepatch
// support yields an error satisfying errors.Is(err, os.ErrNotExist).
func (s System) Patches() ([]Patch, error) {
	entries, err := os.ReadDir(s.path("sys", "kernel", "livepatch"))
	if err != nil {
		return nil, err
	}
	var out []Patch
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := Patch{Name: e.Name()}
		if v, err := s.readTrim("sys", "kernel", "livepatch", e.Name(), "enabled"); err == nil {
			p.Enabled = v == "1"
		}
		if v, err := s.readTrim("sys", "kernel", "livepatch", e.Name(), "transition"); err == nil {
			p.Transition = v == "1"
		}
		out = append(out, p)
	}
	return out, nil
}
