package sys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// mountInfo is this process's mount table (Linux; absent elsewhere).
const mountInfo = "/proc/self/mountinfo"

// RemoveAll removes path and everything below it, as os.RemoveAll does,
// but refuses, removing nothing, while a file system is mounted at or
// below it. kelp's caches hold chroots (build roots, the test system's
// root) whose /proc, /dev or bound directories are mounted while a
// command runs there; a mount left behind by a process that was killed
// would make a plain recursive removal delete what it shows, such as the
// host's /dev or a bound working directory. Mounts are read from this
// process's mount table, so a bind of a directory of the same file
// system is seen too. A path that does not exist is no error.
func RemoveAll(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if real, err = filepath.Abs(real); err != nil {
		return err
	}
	table, err := os.ReadFile(mountInfo)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	if m := MountsUnder(table, real); len(m) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted there (a process that used it did not unmount it); unmount it (umount -R %s) and try again", path, strings.Join(m, ", "), m[0])
	}
	return os.RemoveAll(path)
}

// MountsUnder returns the mount points of a mountinfo table (the format
// of /proc/self/mountinfo) that are dir or below it, in table order.
func MountsUnder(table []byte, dir string) []string {
	dir = filepath.Clean(dir)
	var found []string
	for line := range bytes.Lines(table) {
		// id parent major:minor root mountpoint options ...
		f := strings.Fields(string(line))
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") || dir == "/" {
			found = append(found, mp)
		}
	}
	return found
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) of a mountinfo path.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
