package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/ktree"
)

// EnvCache names the environment variable that overrides the test cache
// directory (default: $XDG_CACHE_HOME/kelp/test, else ~/.cache/kelp/test).
const EnvCache = "KELP_TEST_CACHE"

// CacheDir returns (and creates) the root of the test cache.
func CacheDir() (string, error) {
	dir := os.Getenv(EnvCache)
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = filepath.Join(os.TempDir(), "kelp-cache")
		}
		dir = filepath.Join(base, "kelp", "test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("test cache: %w", err)
	}
	return dir, nil
}

// FileKey identifies a file's content cheaply (path, size, mtime), enough
// to notice a reinstalled package.
func FileKey(path string) (string, error) { return ktree.FileKey(path) }

// Digest returns a short hex digest of its arguments.
func Digest(parts ...string) string { return ktree.Digest(parts...) }

// Cached returns dir after making sure build has populated it exactly once
// (see ktree.Cached): an interrupted build is wiped and redone, concurrent
// test processes serialize on a lock file.
func Cached(dir string, build func(dir string) error) (string, error) {
	return ktree.Cached(dir, build)
}

// tail returns the last n lines of s, for error messages about long logs.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
