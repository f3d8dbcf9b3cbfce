package ktree

import (
	"fmt"

	"github.com/kelp-project/kelp/internal/sys"
)

// nullDevice is the host's null device.
const nullDevice = "/dev/null"

// checkNull refuses to work with a null device (path, /dev/null) that is
// not one. kbuild probes the compiler for every optional flag by
// compiling /dev/null and keeps a flag only when that succeeds; were
// /dev/null a file with something in it (a script run as root can leave
// one there), each probe would fail, the flags would silently go missing
// from every command, and kelp would compile code unlike the running
// kernel's.
func checkNull(path string) error {
	ok, err := sys.IsCharDevice(path, 1, 3)
	if err != nil {
		return fmt.Errorf("%s: %w: kbuild's compiler probes need the null device", path, err)
	}
	if !ok {
		return fmt.Errorf("%s is not the null device (character device 1,3): kbuild's compiler probes compile it and would drop flags the kernel was built with; restore it (as root: rm %s; mknod -m 666 %s c 1 3)", path, path, path)
	}
	return nil
}
