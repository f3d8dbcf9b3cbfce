package ktree_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ktree"
	"github.com/kelp-project/kelp/refusal"
)

// TestConfiguredObjects: the objects kbuild compiles for Debian's config
// include built-in objects, single-object modules and parts of
// multi-object modules of several subsystems, and leave out objects of
// other architectures' drivers and .c files that have no object of their
// own (included by another .c), all of which a single-object build would
// compile anyway.
func TestConfiguredObjects(t *testing.T) {
	_, objs := configuredObjects(t)
	for _, o := range []string{
		"fs/proc/cmdline.o", "net/core/dev.o", "kernel/sched/build_policy.o", "arch/x86/kernel/process.o", // vmlinux
		"drivers/net/dummy.o", "drivers/block/brd.o", "sound/drivers/dummy.o", // single-object modules
		"fs/ext4/hash.o", "drivers/gpu/drm/amd/amdgpu/gfx_v9_0.o", // parts of multi-object modules
		"drivers/gpu/drm/amd/pm/powerplay/hwmgr/hwmgr.o", "drivers/gpu/drm/amd/display/dc/core/dc.o", // of amdgpu, named from its directory as ../pm/, ../display/
		"arch/x86/entry/entry_64.o", // assembly
	} {
		if !objs[o] {
			t.Errorf("%s: not among the %d objects Debian's config builds", o, len(objs))
		}
	}
	for _, o := range []string{
		"drivers/cpuidle/cpuidle-powernv.o", "drivers/crypto/atmel-aes.o", "drivers/clk/qcom/dispcc-sc7180.o", // other architectures
		"kernel/sched/rt.o", "kernel/sched/deadline.o", "kernel/sched/loadavg.o", // included by build_policy.c and build_utility.c
		"drivers/net/ethernet/cavium/octeon/octeon_mgmt.o", // MIPS only
	} {
		if objs[o] {
			t.Errorf("%s: the config does not build it, but it is listed", o)
		}
	}
}

// TestObjectsNotBuilt: a changed .c file the config builds no object
// from (other architectures' drivers, a disabled option) is refused
// before anything is compiled, naming that; one built from another
// directory's Makefile is the object of the module that Makefile links.
func TestObjectsNotBuilt(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree, err := k.Tree(ctx)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	patch := func(file string) *ktree.Patch {
		p, err := ktree.ParsePatch([]byte("--- a/" + file + "\n+++ b/" + file + "\n@@ -1 +1 @@\n-a\n+b\n"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, f := range []string{"drivers/cpuidle/cpuidle-powernv.c", "drivers/crypto/atmel-aes.c", "drivers/clk/qcom/dispcc-sc7180.c"} {
		_, _, err := tree.Objects(ctx, patch(f))
		var r *refusal.Error
		if !errors.As(err, &r) || !strings.Contains(err.Error(), "not built by this kernel's config") {
			t.Errorf("%s: %v, want a refusal: not built by this kernel's config", f, err)
		}
	}
	for _, c := range []struct{ file, obj, owner string }{
		{"virt/kvm/eventfd.c", "virt/kvm/eventfd.o", "kvm"},
		{"drivers/gpu/drm/amd/display/dc/core/dc.c", "drivers/gpu/drm/amd/display/dc/core/dc.o", "amdgpu"},
		{"fs/proc/cmdline.c", "fs/proc/cmdline.o", ktree.Vmlinux},
	} {
		objs, _, err := tree.Objects(ctx, patch(c.file))
		if err != nil || len(objs) != 1 || objs[0].Name != c.obj {
			t.Errorf("%s: objects %v, %v; want %s", c.file, objs, err, c.obj)
			continue
		}
		cmd, err := tree.Command(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		if o := ktree.OwnerOf(cmd); o != c.owner {
			t.Errorf("%s: owner %s, want %s", c.obj, o, c.owner)
		}
	}
}

// TestRecordedCommands: the command the whole tree's dry run records for
// an object is, byte for byte, the one kbuild's dry run of that object
// alone gives: built-in and module objects of several subsystems, objects
// named from another directory (amdgpu's ../display/, kvm's virt/), and
// every 400th object the config builds.
func TestRecordedCommands(t *testing.T) {
	ctx := context.Background()
	tree, objs := configuredObjects(t)
	sample := []string{
		"fs/proc/cmdline.o", "net/core/dev.o", "kernel/sched/build_policy.o", "arch/x86/kernel/process.o",
		"drivers/net/dummy.o", "sound/drivers/dummy.o", "fs/ext4/hash.o",
		"drivers/gpu/drm/amd/display/dc/core/dc.o", "virt/kvm/kvm_main.o",
	}
	all := make([]string, 0, len(objs))
	for o := range objs {
		all = append(all, o)
	}
	slices.Sort(all)
	for i := 0; i < len(all); i += 400 {
		sample = append(sample, all[i])
	}
	compared := 0
	for _, obj := range sample {
		raw, err := tree.KbuildName(ctx, obj)
		if err != nil {
			t.Errorf("%s: %v", obj, err)
			continue
		}
		want, err := tree.DryRunCommand(ctx, raw)
		if err != nil {
			if strings.Contains(err.Error(), "does not compile it from C") {
				continue // assembly
			}
			t.Errorf("%s: %v", obj, err)
			continue
		}
		got, ok := tree.RecordedCommand(ctx, raw)
		if !ok {
			t.Errorf("%s (%s): no recorded command", obj, raw)
			continue
		}
		if got != want {
			t.Errorf("%s (%s): recorded command\n%s\nits own dry run's\n%s", obj, raw, got, want)
		}
		compared++
	}
	if compared < 15 {
		t.Errorf("%d commands compared; want at least 15", compared)
	}
	if _, ok := tree.RecordedCommand(ctx, "drivers/crypto/atmel-aes.o"); ok {
		t.Error("a command is recorded for an object the config does not build")
	}
}

// configuredObjects is the test kernel's prepared tree and the objects its
// config builds.
func configuredObjects(t *testing.T) (*ktree.Tree, map[string]bool) {
	t.Helper()
	k := testenv.RequireKernel(t)
	tree, err := k.Tree(context.Background())
	if err != nil {
		testenv.MissingOr(t, err)
	}
	objs, err := tree.ConfiguredObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tree, objs
}

// TestParallelDryRun: kbuild's dry run of the whole tree on two cores (each
// sub-make writing to its own files) prints exactly the object commands
// of the dry run on one, and fails only where it does.
func TestParallelDryRun(t *testing.T) {
	ctx := context.Background()
	tree, objs := configuredObjects(t)
	one, errOne, err1 := tree.DryRunLines(ctx, 1)
	two, errTwo, err2 := tree.DryRunLines(ctx, 2)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("one core: %v (%s); two: %v (%s)", err1, lastLine(errOne), err2, lastLine(errTwo))
	}
	if len(one) < len(objs) {
		t.Fatalf("the dry run on one core printed %d object commands, fewer than the %d objects recorded", len(one), len(objs))
	}
	if !slices.Equal(one, two) {
		for i := range min(len(one), len(two)) {
			if one[i] != two[i] {
				t.Fatalf("%d and %d command lines; first difference:\n%s\n%s", len(one), len(two), one[i], two[i])
			}
		}
		t.Fatalf("%d and %d command lines", len(one), len(two))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
