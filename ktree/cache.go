package ktree

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

// Cached returns dir after making sure build has populated it exactly
// once. build fills dir in place (a prepared kernel tree must not move); a
// ".complete" marker is written last, and an entry without it (an
// interrupted build) is wiped and rebuilt. Concurrent processes serialize
// on dir.lock.
func Cached(dir string, build func(dir string) error) (string, error) {
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	// An attempt that did not complete is removed, never through a
	// mount a killed process left in it (a chroot's /dev, a bound
	// directory).
	if err := sys.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := build(dir); err != nil {
		if rerr := sys.RemoveAll(dir); rerr != nil {
			return "", fmt.Errorf("%w; %v", err, rerr)
		}
		return "", err
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// lockFile takes an exclusive lock on path (created if needed).
func lockFile(path string) (func(), error) { return sys.LockPath(path) }

// tail returns the last n lines of s, for error messages about long logs.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
