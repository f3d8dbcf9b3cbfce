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
		"proc/sys/kernel/version":        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n",
	})
	if v, err := k.DebianVersion(); err != nil || v != "6.1.192-3" {
		t.Errorf("DebianVersion = %q, %v", v, err)
	}
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

func TestDebianVersionOf(t *testing.T) {
	for in, want := range map[string]string{
		"#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)":        "6.1.192-3",
		"#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1 (2026-10-02)":       "6.12.117-1",
		"#1 SMP Debian 5.10.226-1 (2024-10-03)":                       "5.10.226-1",
		"#1 SMP PREEMPT_DYNAMIC @0":                                   "",
		"#27-Ubuntu SMP PREEMPT_DYNAMIC Tue Oct  8 12:00:00 UTC 2024": "",
		"#1 SMP Debian": "",
	} {
		if got := DebianVersionOf(in); got != want {
			t.Errorf("DebianVersionOf(%q) = %q, want %q", in, got, want)
		}
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
	if testing.Short() && os.Getenv("CI") == "" {
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
