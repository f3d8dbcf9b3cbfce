package vmtest

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// archive writes a reproducible newc cpio archive: entries in the order
// added, parents created on demand, owner root, all timestamps zero.
type archive struct {
	w    *cpio.Writer
	dirs map[string]bool
}

func newArchive(w io.Writer) *archive {
	return &archive{w: cpio.NewWriter(w), dirs: map[string]bool{"": true}}
}

func (a *archive) mkdirAll(dir string) error {
	dir = clean(dir)
	if a.dirs[dir] {
		return nil
	}
	if err := a.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	a.dirs[dir] = true
	return a.w.WriteHeader(&cpio.Header{Name: dir, Mode: cpio.TypeDir | 0o755, Links: 2})
}

func (a *archive) file(name string, mode int64, data []byte) error {
	name = clean(name)
	if err := a.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := a.w.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | cpio.FileMode(mode&0o7777), Size: int64(len(data))}); err != nil {
		return fmt.Errorf("initramfs %s: %w", name, err)
	}
	_, err := a.w.Write(data)
	return err
}

func (a *archive) symlink(name, target string) error {
	name = clean(name)
	if err := a.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := a.w.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeSymlink | 0o777, Size: int64(len(target))}); err != nil {
		return fmt.Errorf("initramfs %s: %w", name, err)
	}
	_, err := a.w.Write([]byte(target))
	return err
}

func (a *archive) close() error { return a.w.Close() }

// clean makes an archive path: relative, slash-separated, no "..".
func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// sortedFiles returns the guest paths of files in a stable order.
func sortedFiles(files []File) []File {
	out := append([]File(nil), files...)
	sort.SliceStable(out, func(i, j int) bool { return clean(out[i].Path) < clean(out[j].Path) })
	return out
}
