package ksymtest

import (
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ksym"
)

// TestKernel dumps (or reads the cached dump of) the test kernel's
// kallsyms and checks that it is root's view: real addresses, tens of
// thousands of vmlinux symbols, the ones every kernel has.
func TestKernel(t *testing.T) {
	k := testenv.RequireKernel(t)
	ks := Kernel(t, k)
	if n := len(ks.Vmlinux.Syms); n < 50000 {
		t.Errorf("%d vmlinux symbols, want the full table", n)
	}
	for _, name := range []string{"schedule", "klp_enable_patch", "init_task"} {
		idx := ks.Vmlinux.Lookup(name)
		if len(idx) != 1 {
			t.Errorf("%s listed %d times", name, len(idx))
			continue
		}
		if ks.Vmlinux.Syms[idx[0]].Addr == 0 {
			t.Errorf("%s at address 0: dump taken without root's view", name)
		}
	}
	if e, ok := ks.Exports["schedule"]; !ok || e.Object != ksym.Vmlinux {
		t.Errorf("Module.symvers: schedule = %+v", e)
	}
	ext4 := Module(t, k, "ext4")
	if len(ext4.Lookup("ext4_file_operations")) != 1 {
		t.Errorf("ext4.ko table lacks ext4_file_operations")
	}
}
