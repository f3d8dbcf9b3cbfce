package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/internal/sys"
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
func FileKey(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d:%d", path, st.Size(), st.ModTime().UnixNano()), nil
}

// Digest returns a short hex digest of its arguments.
func Digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Cached returns dir after making sure build has populated it exactly once.
// build fills dir in place (kernel trees must not move after they are
// prepared); a ".complete" marker is written last, and an entry without it
// (an interrupted build) is wiped and rebuilt. Concurrent test processes
// serialize on a lock file.
func Cached(dir string, build func(dir string) error) (string, error) {
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := sys.Lock(lock); err != nil {
		return "", err
	}
	defer sys.Unlock(lock)
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := build(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// tail returns the last n lines of s, for error messages about long logs.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
