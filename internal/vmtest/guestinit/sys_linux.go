//go:build linux

package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The system calls only the test guest makes.

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
