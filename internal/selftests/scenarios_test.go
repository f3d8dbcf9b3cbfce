package selftests

import (
	"strings"
	"testing"
)

// scenario is one test case of the kernel's livepatch selftests, re-created
// with kelp. Body is the case's shell body with the upstream helper names
// (see prelude); the expected transcript is read from the upstream script
// and rewritten by kelpTranscript.
type scenario struct {
	Script string // e.g. "test-callbacks.sh"
	Name   string // the script's start_test name
	Body   string
	// KelpErrors are the last lines kelp prints for the loads the
	// scenario expects to fail, by module.
	KelpErrors map[string]string
	// Adjust, when set, edits the rewritten expectation where kelp
	// behaves differently by design (see the scenario).
	Adjust func([]string) []string
	// Actual, when set, edits the guest's log where it holds values the
	// script's expectation names by a variable it sets at run time
	// (process ids), checking each value it replaces.
	Actual func(*testing.T, []string) []string
	// OneCPU, when set, says why the scenario runs in a guest of one
	// CPU, booted for it after the others.
	OneCPU string
}

const (
	lp         = "test_klp_livepatch"
	replace    = "test_klp_atomic_replace"
	demo       = "test_klp_callbacks_demo"
	demo2      = "test_klp_callbacks_demo2"
	target     = "test_klp_callbacks_mod"
	busy       = "test_klp_callbacks_busy"
	shadow     = "test_klp_shadow_vars"
	state1     = "test_klp_state"
	state2     = "test_klp_state2"
	state3     = "test_klp_state3"
	patched    = "this has been live patched"
	kelpENODEV = "kelp: " + demo + ": kernel refused to load the module: no such device (ENODEV) (kernel log: livepatch: pre-patch callback failed for object 'vmlinux')"
)

// vars sets the upstream scripts' variable names for a body.
func vars(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + "=" + kv[i+1] + "\n")
	}
	return b.String()
}

var livepatchVars = vars("MOD_LIVEPATCH", lp, "MOD_REPLACE", replace)
var callbackVars = vars("MOD_LIVEPATCH", demo, "MOD_LIVEPATCH2", demo2, "MOD_TARGET", target, "MOD_TARGET_BUSY", busy)
var stateVars = vars("MOD_LIVEPATCH", state1, "MOD_LIVEPATCH2", state2, "MOD_LIVEPATCH3", state3)

const grepPatched = `grep 'live patched' /proc/cmdline > /dev/kmsg
grep 'live patched' /proc/meminfo > /dev/kmsg
`

var scenarios = []scenario{
	// test-livepatch.sh
	{Script: "test-livepatch.sh", Name: "basic function patching", Body: livepatchVars + `
load_lp $MOD_LIVEPATCH
[ "$(cat /proc/cmdline)" = "$MOD_LIVEPATCH: ` + patched + `" ] || die "livepatch kselftest(s) failed"
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
[ "$(cat /proc/cmdline)" != "$MOD_LIVEPATCH: ` + patched + `" ] || die "livepatch kselftest(s) failed"
`},
	{Script: "test-livepatch.sh", Name: "multiple livepatches", Body: livepatchVars + `
load_lp $MOD_LIVEPATCH
` + grepPatched + `
load_lp $MOD_REPLACE replace=0
` + grepPatched + `
disable_lp $MOD_REPLACE
unload_lp $MOD_REPLACE
` + grepPatched + `
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
` + grepPatched},
	{Script: "test-livepatch.sh", Name: "atomic replace livepatch", Body: livepatchVars + `
load_lp $MOD_LIVEPATCH
` + grepPatched + `
load_lp $MOD_REPLACE replace=1
` + grepPatched + `
unload_lp $MOD_LIVEPATCH
` + grepPatched + `
disable_lp $MOD_REPLACE
unload_lp $MOD_REPLACE
` + grepPatched},

	// test-callbacks.sh
	{Script: "test-callbacks.sh", Name: "target module before livepatch", Body: callbackVars + `
load_mod $MOD_TARGET
load_lp $MOD_LIVEPATCH
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET
`},
	{Script: "test-callbacks.sh", Name: "module_coming notifier", Body: callbackVars + `
load_lp $MOD_LIVEPATCH
load_mod $MOD_TARGET
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET
`},
	{Script: "test-callbacks.sh", Name: "module_going notifier", Body: callbackVars + `
load_mod $MOD_TARGET
load_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-callbacks.sh", Name: "module_coming and module_going notifiers", Body: callbackVars + `
load_lp $MOD_LIVEPATCH
load_mod $MOD_TARGET
unload_mod $MOD_TARGET
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-callbacks.sh", Name: "target module not present", Body: callbackVars + `
load_lp $MOD_LIVEPATCH
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-callbacks.sh", Name: "pre-patch callback -ENODEV", Body: callbackVars + `
load_mod $MOD_TARGET
load_failing_lp $MOD_LIVEPATCH 2 pre_patch_ret=-19
unload_mod $MOD_TARGET
`, KelpErrors: map[string]string{demo: kelpENODEV}},
	{Script: "test-callbacks.sh", Name: "module_coming + pre-patch callback -ENODEV", Body: callbackVars + `
load_lp $MOD_LIVEPATCH
set_pre_patch_ret $MOD_LIVEPATCH -19
load_failing_mod $MOD_TARGET
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-callbacks.sh", Name: "multiple target modules", Body: callbackVars + `
load_mod $MOD_TARGET_BUSY block_transition=N
load_lp $MOD_LIVEPATCH
load_mod $MOD_TARGET
unload_mod $MOD_TARGET
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET_BUSY
`},
	// The stalled transition is reversed by kelp unload of a patch still
	// patching, as upstream reverses it by writing 0 to enabled.
	{Script: "test-callbacks.sh", Name: "busy target module", Body: callbackVars + `
load_mod $MOD_TARGET_BUSY block_transition=Y
load_lp_nowait $MOD_LIVEPATCH
loop_until 'grep -q "^1$" /sys/kernel/livepatch/$MOD_LIVEPATCH/transition' || die "failed to stall transition"
load_mod $MOD_TARGET
unload_mod $MOD_TARGET
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET_BUSY
`},
	{Script: "test-callbacks.sh", Name: "multiple livepatches", Body: callbackVars + `
load_lp $MOD_LIVEPATCH
load_lp $MOD_LIVEPATCH2
disable_lp $MOD_LIVEPATCH2
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-callbacks.sh", Name: "atomic replace", Body: callbackVars + `
load_lp $MOD_LIVEPATCH
load_lp $MOD_LIVEPATCH2 replace=1
disable_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH
`},

	// test-shadow-vars.sh
	{Script: "test-shadow-vars.sh", Name: "basic shadow variable API", Body: vars("MOD_TEST", shadow) + `
load_mod $MOD_TEST
unload_mod $MOD_TEST
`},

	// test-state.sh
	{Script: "test-state.sh", Name: "system state modification", Body: stateVars + `
load_lp $MOD_LIVEPATCH
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-state.sh", Name: "taking over system state modification", Body: stateVars + `
load_lp $MOD_LIVEPATCH
load_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH
disable_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH2
`},
	{Script: "test-state.sh", Name: "compatible cumulative livepatches", Body: stateVars + `
load_lp $MOD_LIVEPATCH2
load_lp $MOD_LIVEPATCH3
unload_lp $MOD_LIVEPATCH2
load_lp $MOD_LIVEPATCH2
disable_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH3
`},
	{Script: "test-state.sh", Name: "incompatible cumulative livepatches", Body: stateVars + `
load_lp $MOD_LIVEPATCH2
load_failing_lp $MOD_LIVEPATCH 2
disable_lp $MOD_LIVEPATCH2
unload_lp $MOD_LIVEPATCH2
`, KelpErrors: map[string]string{state1: "kelp: " + state1 + ": kernel refused to load the module: invalid argument (EINVAL) (kernel log: livepatch: Livepatch patch (" + state1 + ") is not compatible with the already installed livepatches.)"}},

	// test-ftrace.sh. kelp's pre-flight refuses a load while
	// ftrace_enabled=0, so the kernel never sees the module: its failed
	// attempt (six kernel lines) becomes kelp's one-line refusal.
	{Script: "test-ftrace.sh", Name: "livepatch interaction with ftrace_enabled sysctl", Body: vars("MOD_LIVEPATCH", lp) + `
set_ftrace_enabled 0
load_failing_lp $MOD_LIVEPATCH 1
set_ftrace_enabled 1
load_lp $MOD_LIVEPATCH
[ "$(cat /proc/cmdline)" = "$MOD_LIVEPATCH: ` + patched + `" ] || die "livepatch kselftest(s) failed"
set_ftrace_enabled --fail 0
[ "$(cat /proc/cmdline)" = "$MOD_LIVEPATCH: ` + patched + `" ] || die "livepatch kselftest(s) failed"
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`, KelpErrors: map[string]string{lp: "kelp: " + lp + ": live patching is not possible here: ftrace_enabled: 0: patched functions cannot be redirected (sysctl kernel.ftrace_enabled=1)"},
		Adjust: func(exp []string) []string {
			var out []string
			skipping := false
			for _, l := range exp {
				switch {
				case l == "% kelp load "+lp+".ko" && !skipping && len(out) == 1:
					out = append(out, l)
					skipping = true
					continue
				case skipping && strings.HasPrefix(l, "kelp: "):
					skipping = false
				case skipping:
					continue
				case strings.HasPrefix(l, "livepatch: sysctl: setting key"):
					l = busyboxSysctlError
				}
				out = append(out, l)
			}
			return out
		}},

	// test-sysfs.sh
	{Script: "test-sysfs.sh", Name: "sysfs test", Body: vars("MOD_LIVEPATCH", lp) + `
load_lp $MOD_LIVEPATCH
check_sysfs_rights "$MOD_LIVEPATCH" "" "drwxr-xr-x"
check_sysfs_rights "$MOD_LIVEPATCH" "enabled" "-rw-r--r--"
check_sysfs_value  "$MOD_LIVEPATCH" "enabled" "1"
check_sysfs_rights "$MOD_LIVEPATCH" "force" "--w-------"
check_sysfs_rights "$MOD_LIVEPATCH" "transition" "-r--r--r--"
check_sysfs_value  "$MOD_LIVEPATCH" "transition" "0"
check_sysfs_rights "$MOD_LIVEPATCH" "vmlinux/patched" "-r--r--r--"
check_sysfs_value  "$MOD_LIVEPATCH" "vmlinux/patched" "1"
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
	{Script: "test-sysfs.sh", Name: "sysfs test object/patched", Body: vars("MOD_LIVEPATCH", demo, "MOD_TARGET", target) + `
load_lp $MOD_LIVEPATCH
check_sysfs_value  "$MOD_LIVEPATCH" "$MOD_TARGET/patched" "0"
load_mod $MOD_TARGET
check_sysfs_value  "$MOD_LIVEPATCH" "$MOD_TARGET/patched" "1"
unload_mod $MOD_TARGET
check_sysfs_value  "$MOD_LIVEPATCH" "$MOD_TARGET/patched" "0"
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
`},
}

// busyboxSysctlError is what set_ftrace_enabled --fail logs: busybox
// sysctl's message where upstream has procps's.
const busyboxSysctlError = "livepatch: sysctl: write error: Device or resource busy"
