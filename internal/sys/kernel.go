package sys

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Kernel reads the facts of a running kernel from /proc below Root: "/"
// for the machine kelp runs on, a fake tree in tests.
type Kernel struct {
	Root string
}

// Running is the kernel of the machine kelp runs on.
var Running = Kernel{Root: "/"}

// Path returns the path of a kernel file below Root, e.g.
// Path("proc", "kallsyms").
func (k Kernel) Path(elem ...string) string {
	return filepath.Join(append([]string{k.Root}, elem...)...)
}

func (k Kernel) read(elem ...string) (string, error) {
	data, err := os.ReadFile(k.Path(elem...))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// Release returns the kernel release (uname -r).
func (k Kernel) Release() (string, error) {
	rel, err := k.read("proc", "sys", "kernel", "osrelease")
	if err != nil && k.Root == "/" {
		return Release()
	}
	if err != nil {
		return "", fmt.Errorf("kernel release: %w", err)
	}
	return rel, nil
}

// Notes returns the kernel's ELF notes (/sys/kernel/notes), its build id
// among them.
func (k Kernel) Notes() ([]byte, error) {
	return os.ReadFile(k.Path("sys", "kernel", "notes"))
}

// DebianVersion returns the Debian version of the kernel's packages
// (6.1.192-3) from its version string (/proc/sys/kernel/version, "#1 SMP
// PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"), "" for a kernel that
// names none.
func (k Kernel) DebianVersion() (string, error) {
	v, err := k.read("proc", "sys", "kernel", "version")
	if err != nil {
		return "", fmt.Errorf("kernel version: %w", err)
	}
	return DebianVersionOf(v), nil
}

// DebianVersionOf extracts the Debian version from a kernel version
// string, "" when it names none.
func DebianVersionOf(version string) string {
	f := strings.Fields(version)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "Debian" && f[i+1] != "" && f[i+1][0] >= '0' && f[i+1][0] <= '9' {
			return f[i+1]
		}
	}
	return ""
}

// Tainted returns the kernel's taint mask (/proc/sys/kernel/tainted).
func (k Kernel) Tainted() (uint64, error) {
	v, err := k.read("proc", "sys", "kernel", "tainted")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unparsable tainted value %q", v)
	}
	return n, nil
}

// BootID returns the random id of this boot, "" when unreadable.
func (k Kernel) BootID() string {
	v, _ := k.read("proc", "sys", "kernel", "random", "boot_id")
	return v
}

// Cmdline returns the kernel command line's arguments.
func (k Kernel) Cmdline() ([]string, error) {
	v, err := k.read("proc", "cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Fields(v), nil
}

// CmdlineHas reports whether arg is one of the kernel command line's
// arguments; an unreadable command line has none.
func (k Kernel) CmdlineHas(arg string) bool {
	args, _ := k.Cmdline()
	for _, a := range args {
		if a == arg {
			return true
		}
	}
	return false
}
