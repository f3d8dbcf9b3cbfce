// Package atomicfile replaces files so that a crash, a power loss or a full
// disk leaves either the old or the new content, never a mix.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data: a temporary file in the same
// directory, fsync, rename, then an fsync of the directory so the rename
// itself is durable. On error the temporary file is removed and path is
// unchanged. Temporary names start with "." and end in ".tmp", so readers
// can recognise leftovers.
// Missing parent directories are created.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return Replace(path, data, perm)
}

// Replace is WriteFile into a directory that must exist: it creates
// nothing but path, for files a user names (a missing directory is their
// typo, not something to create).
func Replace(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a directory's entries (creations, renames, removals)
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
