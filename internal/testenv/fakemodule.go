package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FakeModule compiles a minimal object carrying the sections a kernel
// module file has (.modinfo with name, vermagic and optionally
// livepatch=Y plus extra key=value strings, .gnu.linkonce.this_module), for
// unit tests of code that inspects module files. It cannot be loaded;
// kernel-facing behaviour is tested with real modules in the VM.
func FakeModule(t testing.TB, name, release string, livepatch bool, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	info := []string{"name=" + name, "vermagic=" + release + " SMP preempt mod_unload modversions "}
	if livepatch {
		info = append(info, "livepatch=Y")
	}
	info = append(info, extra...)
	var src strings.Builder
	for i, kv := range info {
		fmt.Fprintf(&src, "__attribute__((section(\".modinfo\"), used)) static const char info%d[] = %q;\n", i, kv)
	}
	src.WriteString("__attribute__((section(\".gnu.linkonce.this_module\"), used)) static char this_module[64];\n")
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ko := filepath.Join(dir, name+".ko")
	if out, err := exec.Command("gcc", "-c", "-o", ko, c).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return ko
}
