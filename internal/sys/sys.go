// Package sys is kelp's only door to raw system calls. Every other package
// reaches the kernel through the functions here, so the set of syscalls kelp
// makes is visible in one place and can be reviewed as a whole.
package sys

import (
	"errors"
	"fmt"
	"os"

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
func ErrnoName(e unix.Errno) string { return unix.ErrnoName(e) }

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

// Mount mounts source on target with the given filesystem type; an already
// mounted target (EBUSY) is not an error.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	err := unix.Mount(source, target, fstype, flags, data)
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

// Unmount detaches the filesystem mounted on target.
func Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("umount %s: %w", target, err)
	}
	return nil
}

// Mount flags used by kelp.
const (
	MountNoSuid = unix.MS_NOSUID
	MountNoDev  = unix.MS_NODEV
	MountNoExec = unix.MS_NOEXEC
)

// Lock takes an exclusive advisory lock on f, waiting for it.
func Lock(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// Unlock releases a lock taken with Lock.
func Unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// Sync flushes filesystem buffers.
func Sync() { unix.Sync() }

// PowerOff flushes buffers and powers the machine off. It only returns on
// failure.
func PowerOff() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// KernelLog returns the whole kernel ring buffer (dmesg).
func KernelLog() ([]byte, error) {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil {
		return nil, fmt.Errorf("syslog size: %w", err)
	}
	buf := make([]byte, n)
	m, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return nil, fmt.Errorf("syslog read: %w", err)
	}
	return buf[:m], nil
}

// MakeRawTTY switches the terminal on fd to raw mode so bytes pass
// unchanged (no CR/LF translation, no echo).
func MakeRawTTY(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("tcgets: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("tcsets: %w", err)
	}
	return nil
}

// Mknod creates a device node.
func Mknod(path string, char bool, major, minor uint32, perm uint32) error {
	mode := perm
	if char {
		mode |= unix.S_IFCHR
	} else {
		mode |= unix.S_IFBLK
	}
	if err := unix.Mknod(path, mode, int(unix.Mkdev(major, minor))); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mknod %s: %w", path, err)
	}
	return nil
}

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
