package klpmod

import (
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

// TestLoadInKernel assembles modules from source patches and loads them
// with kelp into the real kernel under QEMU: the /proc/cmdline string
// change (a klp relocation to saved_command_line) changes what
// /proc/cmdline shows and unloading restores it.
func TestLoadInKernel(t *testing.T) {
	k := testenv.RequireKernel(t)
	cmdline := buildPatch(t, k, "cmdline-string", Options{Name: "kelp_cmdline", Replace: true})
	res := vmtest.RunT(t, vmtest.Config{
		Kernel: k,
		Files:  []vmtest.File{{Path: "/root/kelp_cmdline.ko", Host: cmdline.Path}},
		Steps: []vmtest.Step{
			{Name: "before", Shell: "cat /proc/cmdline"},
			{Name: "load", Shell: "kelp load /root/kelp_cmdline.ko"},
			{Name: "patched", Shell: "cat /proc/cmdline"},
			{Name: "list", Shell: "kelp list"},
			{Name: "unload", Shell: "kelp unload kelp_cmdline && ! grep -w kelp_cmdline /proc/modules"},
			{Name: "restored", Shell: "cat /proc/cmdline"},
		},
	})
	before := res.MustStep(t, "before").Stdout
	if !strings.Contains(before, "console=ttyS0") || strings.Contains(before, "kelp.patched") {
		t.Fatalf("/proc/cmdline before = %q", before)
	}
	t.Logf("kelp load:\n%s%s", res.MustStep(t, "load").Stdout, res.MustStep(t, "load").Stderr)
	t.Logf("patched /proc/cmdline: %s", res.MustStep(t, "patched").Stdout)
	t.Logf("kelp list:\n%s", res.MustStep(t, "list").Stdout)
	if got, want := res.MustStep(t, "patched").Stdout, strings.TrimSuffix(before, "\n")+" kelp.patched=1\n"; got != want {
		t.Errorf("/proc/cmdline patched = %q, want %q", got, want)
	}
	if got := res.MustStep(t, "list").Stdout; !strings.Contains(got, "cmdline_proc_show") {
		t.Errorf("kelp list does not show cmdline_proc_show:\n%s", got)
	}
	res.MustStep(t, "unload")
	if got := res.MustStep(t, "restored").Stdout; got != before {
		t.Errorf("/proc/cmdline after unload = %q, want %q", got, before)
	}
}
