package sys

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func fakeKernel(t *testing.T, files map[string]string) Kernel {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Kernel{Root: root}
}

func TestKernelFacts(t *testing.T) {
	k := fakeKernel(t, map[string]string{
		"proc/sys/kernel/osrelease":      "6.1.0-56-amd64\n",
		"proc/sys/kernel/tainted":        "45056\n",
		"proc/sys/kernel/random/boot_id": "6a9b4a52-5b8e-4a51-9f43-1d2e0c6f7a10\n",
		"proc/cmdline":                   "BOOT_IMAGE=/vmlinuz root=/dev/vda kelp.enable=0 quiet\n",
	})
	if rel, err := k.Release(); err != nil || rel != "6.1.0-56-amd64" {
		t.Errorf("Release = %q, %v", rel, err)
	}
	if n, err := k.Tainted(); err != nil || n != 45056 {
		t.Errorf("Tainted = %d, %v", n, err)
	}
	if id := k.BootID(); id != "6a9b4a52-5b8e-4a51-9f43-1d2e0c6f7a10" {
		t.Errorf("BootID = %q", id)
	}
	if !k.CmdlineHas("kelp.enable=0") || k.CmdlineHas("kelp.enable") || k.CmdlineHas("root") {
		t.Error("CmdlineHas matches whole arguments only")
	}
}

func TestKernelFactsUnreadable(t *testing.T) {
	k := fakeKernel(t, map[string]string{"proc/sys/kernel/tainted": "lots\n"})
	if _, err := k.Release(); err == nil {
		t.Error("Release of a tree without osrelease: no error")
	}
	if _, err := k.Tainted(); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("Tainted of an unparsable value: %v", err)
	}
	if k.BootID() != "" || k.CmdlineHas("quiet") {
		t.Error("an unreadable boot id or command line reads as empty")
	}
}

// TestBuildsOffLinux: the packages that only read and write files build
// and vet for another operating system, with this package's stub.
func TestBuildsOffLinux(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the standard library")
	}
	pkgs := []string{"./elfobj", "./objdiff", "./klpmod", "./kmod", "./ksym", "./modsign", "./store", "./livepatch", "./ktree", "./build", "./internal/sys"}
	for _, tool := range []string{"build", "vet"} {
		cmd := exec.Command("go", append([]string{tool}, pkgs...)...)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=darwin go %s: %v\n%s", tool, err, out)
		}
	}
}
