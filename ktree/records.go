package ktree

import (
	"os"
	"path/filepath"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// Small answers that are slow to learn (a compiler's identity, a dpkg
// query) are kept as records under $XDG_CACHE_HOME/kelp/<kind>/<name>.
// The caller's name carries everything that makes a record stale, so a
// record is only ever read back or replaced.

// recordPath names the record name of kind.
func recordPath(kind, name string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "kelp", kind, name), nil
}

// keepRecord writes data as the record at path; a record that cannot be
// written is only a slower next build.
func keepRecord(path string, data []byte) {
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		atomicfile.WriteFile(path, data, 0o644)
	}
}
