//go:build !linux

package sys

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ErrUnsupported is what every system call returns off Linux.
var ErrUnsupported = errors.New("not supported on this operating system (kelp talks to Linux)")

// Errno values with their Linux numbers: no call here returns them.
var (
	EBUSY        = syscall.Errno(16)
	EEXIST       = syscall.Errno(17)
	ENOENT       = syscall.Errno(2)
	EPERM        = syscall.Errno(1)
	EINVAL       = syscall.Errno(22)
	ENOEXEC      = syscall.Errno(8)
	EKEYREJECTED = syscall.Errno(129)
	EAGAIN       = syscall.Errno(11)
	EPIPE        = syscall.Errno(32)
	ENODEV       = syscall.Errno(19)
	ENOKEY       = syscall.Errno(126)
	EKEYEXPIRED  = syscall.Errno(127)
	EBADMSG      = syscall.Errno(74)
)

// ErrnoName returns "" off Linux.
func ErrnoName(syscall.Errno) string { return "" }

// Release fails off Linux.
func Release() (string, error) { return "", ErrUnsupported }

// Machine fails off Linux.
func Machine() (string, error) { return "", ErrUnsupported }

// Flags for FinitModule.
const (
	ModuleIgnoreVermagic    = 2
	ModuleIgnoreModversions = 1
	ModuleCompressedFile    = 4
)

// FinitModule fails off Linux.
func FinitModule(*os.File, string, int) error { return ErrUnsupported }

// DeleteModule fails off Linux.
func DeleteModule(string, bool) error { return ErrUnsupported }

// Lock fails off Linux.
func Lock(*os.File) error { return ErrUnsupported }

// TryLock fails off Linux.
func TryLock(*os.File) (bool, error) { return false, ErrUnsupported }

// Unlock fails off Linux.
func Unlock(*os.File) error { return ErrUnsupported }

// IsTerminal is false off Linux.
func IsTerminal(int) bool { return false }

// DieWithParent does nothing off Linux.
func DieWithParent(*exec.Cmd) {}

// MaxRSS is not known off Linux.
func MaxRSS(ps *os.ProcessState) (int64, bool) { return 0, false }

// Inode is unknown here: callers fall back to reading the file.
func Inode(os.FileInfo) (dev, ino uint64, ctime time.Time, ok bool) {
	return 0, 0, time.Time{}, false
}

// CharDevice makes a device node: Linux only.
func CharDevice(string, uint32, uint32, os.FileMode) error { return ErrUnsupported }

// IsCharDevice tells whether path is a device node: Linux only.
func IsCharDevice(string, uint32, uint32) (bool, error) { return false, ErrUnsupported }
