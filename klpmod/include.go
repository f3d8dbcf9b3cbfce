package klpmod

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed include
var include embed.FS

// WriteInclude writes the headers for patch authors into dir:
// dir/kelp/patch.h, dir/kpatch-macros.h and dir/kpatch-syscall.h. Compile the patched units with
// -I dir so that "#include <kelp/patch.h>" and kpatch's
// "#include \"kpatch-macros.h\"" find them.
func WriteInclude(dir string) error {
	return fs.WalkDir(include, "include", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("include", p)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := include.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}
