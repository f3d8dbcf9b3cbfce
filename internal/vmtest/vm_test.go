package vmtest

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBootCheck boots the Debian kernel and asks kelp whether it can live
// patch: it must say yes, with every blocking check passing.
func TestBootCheck(t *testing.T) {
	res := RunT(t, Config{Steps: []Step{
		{Name: "uname", Shell: "uname -r"},
		{Name: "check", Shell: "kelp check --json"},
	}})
	if got := strings.TrimSpace(res.MustStep(t, "uname").Stdout); got != res.Release {
		t.Errorf("uname -r = %q, guest init reported %q", got, res.Release)
	}
	out := res.MustStep(t, "check").Stdout
	var rep struct {
		Kernel            string `json:"kernel"`
		LivepatchPossible bool   `json:"livepatch_possible"`
		Checks            []struct {
			Name   string `json:"name"`
			OK     bool   `json:"passed"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kelp check --json: %v\n%s", err, out)
	}
	if !rep.LivepatchPossible || rep.Kernel != res.Release {
		t.Fatalf("kelp check in the guest: possible=%v kernel=%q\n%s", rep.LivepatchPossible, rep.Kernel, out)
	}
	for _, c := range rep.Checks {
		if (c.Name == "livepatch" || c.Name == "ftrace_enabled" || c.Name == "reliable_stacktrace") && !c.OK {
			t.Errorf("check %s failed in the guest: %s", c.Name, c.Detail)
		}
	}
}

// TestInitramfsNotLeft: a boot's own initramfs is off the disk while its
// guest runs (QEMU reads it through a descriptor), so a test process
// killed mid-boot leaves none behind, and none is left after the boot.
func TestInitramfsNotLeft(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var seen []string
	var looked sync.Once
	console := writerFunc(func(p []byte) (int, error) {
		looked.Do(func() { seen, _ = filepath.Glob(filepath.Join(tmp, "kelp-initramfs-*")) })
		return len(p), nil
	})
	res := RunT(t, Config{Console: console, Steps: []Step{{Name: "uname", Shell: "uname -r"}}})
	if got := strings.TrimSpace(res.MustStep(t, "uname").Stdout); got != res.Release {
		t.Errorf("uname -r = %q, guest init reported %q", got, res.Release)
	}
	if res.Console == "" {
		t.Fatal("the guest printed nothing on its console")
	}
	if len(seen) != 0 {
		t.Errorf("while the guest ran: %q on the disk", seen)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "kelp-initramfs-*")); len(left) != 0 {
		t.Errorf("after the boot: %q left", left)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
