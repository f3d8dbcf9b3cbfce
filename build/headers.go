package build

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

// include holds the headers patch authors include: kelp/patch.h and the
// kpatch-compatible kpatch-macros.h and kpatch-syscall.h.
//
//go:embed include
var include embed.FS

// writeHeaders writes the author headers under dir and returns the
// directory to put on the include path.
func writeHeaders(dir string) (string, error) {
	err := fs.WalkDir(include, "include", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := include.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p[len("include/"):]))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	return dir, err
}
