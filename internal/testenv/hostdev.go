package testenv

import (
	"os"
	"testing"

	"github.com/kelp-project/kelp/internal/sys"
)

// DevProbe is shell that checks, inside a root, the device nodes
// buildroot.PrivateDev makes, then replaces /dev/null with a file as a careless
// package script could; DevProbeWant is its output when the nodes are
// there and the replacement stayed inside.
const (
	DevProbe = `for d in null zero full random urandom tty; do test -c /dev/$d || echo "no /dev/$d"; done
test -L /dev/fd || echo "no /dev/fd"
echo discarded > /dev/null
rm /dev/null && echo replaced > /dev/null && cat /dev/null`
	DevProbeWant = "replaced\n"
)

// GuardHostNull fails the test if the host's /dev/null is not a
// character device before it, and checks it again when the test ends; a
// replaced one is restored, so a failing test leaves the machine
// working.
func GuardHostNull(t testing.TB) {
	t.Helper()
	ok := func() bool {
		st, err := os.Lstat("/dev/null")
		return err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	if !ok() {
		t.Fatal("the host's /dev/null is not a character device before the test")
	}
	t.Cleanup(func() {
		if ok() {
			return
		}
		t.Error("a command in the root replaced the host's /dev/null")
		// Not through a program: os/exec opens /dev/null for its input.
		os.Remove("/dev/null")
		if err := sys.CharDevice("/dev/null", 1, 3, 0o666); err != nil {
			t.Errorf("restoring /dev/null: %v", err)
		}
	})
}
