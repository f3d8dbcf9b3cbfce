package sys

import "os"

// LockPath takes an exclusive advisory lock on the file at path (created
// if needed), waiting for it, and returns its release.
func LockPath(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := Lock(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { Unlock(f); f.Close() }, nil
}
