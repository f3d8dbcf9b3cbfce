//go:build linux

package sys

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errno values other packages compare against without importing unix.
var (
	EBUSY        = unix.EBUSY
	EEXIST       = unix.EEXIST
	ENOENT       = unix.ENOENT
	EPERM        = unix.EPERM
	EINVAL       = unix.EINVAL
	ENOEXEC      = unix.ENOEXEC
	EKEYREJECTED = unix.EKEYREJECTED
	EAGAIN       = unix.EAGAIN
	EPIPE        = unix.EPIPE
	ENODEV       = unix.ENODEV
	ENOKEY       = unix.ENOKEY
	EKEYEXPIRED  = unix.EKEYEXPIRED
	EBADMSG      = unix.EBADMSG
)

// ErrnoName returns the symbolic name of an errno ("ENODEV"), "" when it
// has none.
func ErrnoName(e syscall.Errno) string { return unix.ErrnoName(e) }

// Release returns the running kernel's release (uname -r).
func Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// Machine returns the running kernel's machine name (uname -m).
func Machine() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Machine[:]), nil
}

// Flags for FinitModule.
const (
	ModuleIgnoreVermagic    = unix.MODULE_INIT_IGNORE_VERMAGIC
	ModuleIgnoreModversions = unix.MODULE_INIT_IGNORE_MODVERSIONS
	ModuleCompressedFile    = 4 // MODULE_INIT_COMPRESSED_FILE, Linux 6.4+
)

// FinitModule loads the kernel module in file f with the given parameters.
func FinitModule(f *os.File, params string, flags int) error {
	if err := unix.FinitModule(int(f.Fd()), params, flags); err != nil {
		return fmt.Errorf("finit_module %s: %w", f.Name(), err)
	}
	return nil
}

// DeleteModule unloads the named module. It never forces the unload.
func DeleteModule(name string, nonblock bool) error {
	flags := 0
	if nonblock {
		flags = unix.O_NONBLOCK
	}
	if err := unix.DeleteModule(name, flags); err != nil {
		return fmt.Errorf("delete_module %s: %w", name, err)
	}
	return nil
}

// Lock takes an exclusive advisory lock on f, waiting for it.
func Lock(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// TryLock takes an exclusive advisory lock on f without waiting; it
// reports false when another open file description holds it.
func TryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return true, nil
}

// Unlock releases a lock taken with Lock.
func Unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// DieWithParent makes cmd's process receive SIGKILL when the thread that
// started it exits, so a killed test or tool leaves no child running.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// MaxRSS is the peak resident set size in bytes wait4 reported for an
// exited process: the largest of the process and the children it waited
// for.
func MaxRSS(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return ru.Maxrss * 1024, true
}

// Inode is what the file system says of a file's identity and last
// change: device, inode number, and the change time (ctime), which every
// write and every metadata change sets to the current time and which no
// system call can set back.
func Inode(fi os.FileInfo) (dev, ino uint64, ctime time.Time, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, time.Time{}, false
	}
	return uint64(st.Dev), st.Ino, time.Unix(st.Ctim.Sec, st.Ctim.Nsec), true
}

// CharDevice makes the character device node path (major, minor) with
// permissions perm, whatever the umask.
func CharDevice(path string, major, minor uint32, perm os.FileMode) error {
	if err := unix.Mknod(path, unix.S_IFCHR|uint32(perm.Perm()), int(unix.Mkdev(major, minor))); err != nil {
		return &os.PathError{Op: "mknod", Path: path, Err: err}
	}
	return os.Chmod(path, perm.Perm())
}

// IsCharDevice tells whether path is the character device (major,
// minor), following no symbolic link.
func IsCharDevice(path string, major, minor uint32) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == major && unix.Minor(st.Rdev) == minor, nil
}
