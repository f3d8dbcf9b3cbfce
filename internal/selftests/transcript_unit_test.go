package selftests

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestTranscriptRewrite: expectations are read from a selftest script with
// its variables expanded, and only the command lines are rewritten.
func TestTranscriptRewrite(t *testing.T) {
	script := `#!/bin/bash
MOD_LIVEPATCH=test_klp_livepatch
MOD_TARGET=test_klp_callbacks_mod

start_test "one"

load_lp $MOD_LIVEPATCH
check_result "% modprobe $MOD_LIVEPATCH
livepatch: enabling patch '$MOD_LIVEPATCH'
% echo 0 > /sys/kernel/livepatch/$MOD_LIVEPATCH/enabled
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH
% modprobe ${MOD_TARGET} x=1
livepatch: sysctl: setting key \"kernel.ftrace_enabled\"
modprobe: ERROR: could not insert '$MOD_TARGET': No such device
% modprobe test_klp_state
modprobe: ERROR: could not insert 'test_klp_state': Invalid argument
% rmmod test_klp_atomic_replace"
`
	path := filepath.Join(t.TempDir(), "test-x.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := parseSelftest(path)
	if err != nil || len(cs) != 1 || cs[0].Name != "one" || cs[0].Script != "test-x.sh" {
		t.Fatalf("parse = %+v, %v", cs, err)
	}
	got, err := kelpTranscript(cs[0].Expect, map[string]string{"test_klp_state": "kelp: refused"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"% kelp load test_klp_livepatch.ko",
		"livepatch: enabling patch 'test_klp_livepatch'",
		"% kelp unload test_klp_livepatch",
		"livepatch: 'test_klp_livepatch': unpatching complete",
		"% insmod test_klp_callbacks_mod.ko x=1",
		`livepatch: sysctl: setting key "kernel.ftrace_enabled"`,
		`livepatch: sysctl: setting key "kernel.ftrace_enabled"`,
		"insmod: can't insert '/root/ko/test_klp_callbacks_mod.ko': No such device",
		"% kelp load test_klp_state.ko",
		"kelp: refused",
		"% kelp unload test_klp_atomic_replace",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rewritten:\n%s", lineDiff(want, got))
	}
	// 6.12's scripts: insmod from test_modules, kmod's insmod error.
	got, err = kelpTranscript([]string{
		"% insmod test_modules/test_klp_atomic_replace.ko replace=1",
		"livepatch: enabling patch 'test_klp_atomic_replace'",
		"% insmod test_modules/test_klp_callbacks_mod.ko",
		"livepatch: applying patch 'test_klp_callbacks_demo' to loading module 'test_klp_callbacks_mod'",
		"insmod: ERROR: could not insert module test_modules/test_klp_callbacks_mod.ko: No such device",
		"% insmod test_modules/test_klp_state.ko",
		"insmod: ERROR: could not insert module test_modules/test_klp_state.ko: Invalid parameters",
		"% echo 0 > /sys/kernel/livepatch/test_klp_atomic_replace/enabled",
		"% rmmod test_klp_atomic_replace",
		"% insmod test_modules/test_klp_livepatch.ko",
	}, map[string]string{"test_klp_state": "kelp: refused"})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"% kelp load test_klp_atomic_replace.ko replace=1",
		"livepatch: enabling patch 'test_klp_atomic_replace'",
		"% insmod test_klp_callbacks_mod.ko",
		"livepatch: applying patch 'test_klp_callbacks_demo' to loading module 'test_klp_callbacks_mod'",
		"livepatch: applying patch 'test_klp_callbacks_demo' to loading module 'test_klp_callbacks_mod'",
		"insmod: can't insert '/root/ko/test_klp_callbacks_mod.ko': No such device",
		"% kelp load test_klp_state.ko",
		"kelp: refused",
		"% kelp unload test_klp_atomic_replace",
		"% kelp load test_klp_livepatch.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rewritten 6.12 lines:\n%s", lineDiff(want, got))
	}
	log := "[    1.000000] ===== TEST 1: one =====\n[    1.100000] livepatch: x\n[    1.2] other: y\n[    1.3] test_klp_z: loading out-of-tree module taints kernel.\n[    1.4] test_klp_z: hello\n"
	if got := filterLog(log); !reflect.DeepEqual(got, []string{"livepatch: x", "test_klp_z: hello"}) {
		t.Errorf("filterLog = %q", got)
	}
}
