package selftests

// prelude is the guest side of the selftests: the helpers of the kernel's
// tools/testing/selftests/livepatch/functions.sh, with every livepatch
// load, disable and unload going through kelp and ordinary modules through
// busybox insmod/rmmod. Each helper logs the command it runs to the kernel
// log ("% ..."), as the upstream helpers do, so the transcript shows where
// each kernel message came from.
const prelude = `
KO=` + guestKO + `
MAX_RETRIES=600
RETRY_INTERVAL=0.1
KLP_SYSFS_DIR=/sys/kernel/livepatch

log() { echo "$1" > /dev/kmsg; }
die() { log "ERROR: $1"; echo "ERROR: $1" >&2; exit 1; }

# loop_until CMD: retry CMD every 0.1 s, 60 s at most.
loop_until() {
	i=0
	while true; do
		eval "$1" && return 0
		i=$((i+1)); [ $i -ge $MAX_RETRIES ] && return 1
		sleep $RETRY_INTERVAL
	done
}

logcmd() { msg="$*"; log "${msg% }"; }

# load_lp MOD [PARAMS]: kelp load, which returns once the transition is complete.
load_lp() {
	m=$1; shift
	logcmd "% kelp load $m.ko $*"
	kelp load "$KO/$m.ko" "$@" >&2 || die "kelp load $m failed (exit $?)"
	grep -q '^0$' $KLP_SYSFS_DIR/$m/transition || die "kelp load $m returned during the transition"
}

# load_lp_nowait MOD [PARAMS]: kelp load --no-wait, like a bare insmod.
load_lp_nowait() {
	m=$1; shift
	logcmd "% kelp load $m.ko $*"
	kelp load --no-wait "$KO/$m.ko" "$@" >&2 || die "kelp load --no-wait $m failed (exit $?)"
	[ -e $KLP_SYSFS_DIR/$m ] || die "kelp load --no-wait $m: no sysfs entry"
}

# load_failing_lp MOD EXIT [PARAMS]: kelp load must fail with EXIT; its
# last line goes to the kernel log, as load_failing_mod logs modprobe's.
load_failing_lp() {
	m=$1; want=$2; shift 2
	logcmd "% kelp load $m.ko $*"
	out=$(kelp load "$KO/$m.ko" "$@" 2>&1); rc=$?
	echo "$out" >&2
	[ $rc = $want ] || die "kelp load $m: exit $rc, want $want"
	log "$(echo "$out" | tail -n 1)"
	[ ! -e /sys/module/$m ] || die "kelp load $m failed but left the module loaded"
}

# disable_lp MOD: kelp unload disables the patch, waits for the transition
# and removes the module.
disable_lp() {
	m=$1
	log "% kelp unload $m"
	kelp unload "$m" >&2 || die "kelp unload $m failed (exit $?)"
	[ ! -e $KLP_SYSFS_DIR/$m ] || die "kelp unload $m left the patch"
	[ ! -e /sys/module/$m ] || die "kelp unload $m left the module"
}

# unload_lp MOD: remove the module if disable_lp has not already; that is
# the case of a patch replaced by an atomic-replace patch.
unload_lp() {
	m=$1
	[ -e /sys/module/$m ] || return 0
	disable_lp $m
}

load_mod() {
	m=$1; shift
	logcmd "% insmod $m.ko $*"
	out=$(insmod "$KO/$m.ko" "$@" 2>&1) || die "insmod $m: $out"
	loop_until "[ -e /sys/module/$m ]" || die "failed to load module $m"
}

load_failing_mod() {
	m=$1; shift
	logcmd "% insmod $m.ko $*"
	out=$(insmod "$KO/$m.ko" "$@" 2>&1) && die "$m unexpectedly loaded"
	log "$out"
}

unload_mod() {
	m=$1
	loop_until "[ \"\$(cat /sys/module/$m/refcnt)\" = 0 ]" || die "failed to unload module $m (refcnt)"
	log "% rmmod $m"
	out=$(rmmod "$m" 2>&1) || die "$out"
	loop_until "[ ! -e /sys/module/$m ]" || die "failed to unload module $m (/sys/module)"
}

set_pre_patch_ret() {
	m=$1; ret=$2
	log "% echo $ret > /sys/module/$m/parameters/pre_patch_ret"
	echo "$ret" > /sys/module/$m/parameters/pre_patch_ret
	loop_until "[ \"\$(cat /sys/module/$m/parameters/pre_patch_ret)\" = \"$ret\" ]" || die "failed to set pre_patch_ret for $m"
}

# set_ftrace_enabled [--fail] VALUE, as functions.sh (busybox sysctl).
set_ftrace_enabled() {
	can_fail=0
	if [ "$1" = --fail ]; then can_fail=1; shift; fi
	err=$(sysctl -q -w kernel.ftrace_enabled="$1" 2>&1)
	result=$(cat /proc/sys/kernel/ftrace_enabled)
	if [ "$result" != "$1" ]; then
		if [ $can_fail = 1 ]; then
			echo "livepatch: $err" > /dev/kmsg
			return
		fi
		die "failed to set kernel.ftrace_enabled = $1"
	fi
	echo "livepatch: kernel.ftrace_enabled = $result" > /dev/kmsg
}

check_sysfs_rights() {
	path="$KLP_SYSFS_DIR/$1/$2"
	rights=$(stat -c '%A' "$path")
	[ "$rights" = "$3" ] || die "Unexpected access rights of $path: $3 vs. $rights"
}

check_sysfs_value() {
	path="$KLP_SYSFS_DIR/$1/$2"
	value=$(cat "$path")
	[ "$value" = "$3" ] || die "Unexpected value in $path: $3 vs. $value"
}

# start_test SEQ NAME: mark the kernel log (SEQ keeps the mark unique
# where two scripts use the same test name); end_test runs when the
# step's shell exits, however it exits.
start_test() {
	TEST="$1: $2"
	log "===== TEST $TEST ====="
	trap end_test EXIT
}

# end_test prints the kernel log since start_test. The scenario must leave
# no patch and no test module behind: anything left is cleaned up, so the
# next scenario starts clean, and fails the step.
end_test() {
	dirty=""
	for p in $(ls $KLP_SYSFS_DIR); do
		dirty="$dirty patch:$p"
		echo 0 > $KLP_SYSFS_DIR/$p/enabled 2>/dev/null
		loop_until "[ ! -e $KLP_SYSFS_DIR/$p ]"
	done
	for m in $(awk '/^test_klp/ {print $1}' /proc/modules); do
		dirty="$dirty module:$m"
		rmmod $m 2>/dev/null
	done
	dmesg -s 4194304 | awk -v m="===== TEST $TEST =====" 'f {print} index($0, m) {f = 1}'
	[ -z "$dirty" ] || die "scenario left:$dirty"
}
`

// setupStep configures the guest as functions.sh setup_config does:
// verbose livepatch messages (dynamic debug) without the per-task
// "is running" noise, and ftrace enabled.
const setupStep = `
echo 'file kernel/livepatch/* +p' > /sys/kernel/debug/dynamic_debug/control &&
echo 'func klp_try_switch_task -p' > /sys/kernel/debug/dynamic_debug/control &&
echo 1 > /proc/sys/kernel/ftrace_enabled
`
