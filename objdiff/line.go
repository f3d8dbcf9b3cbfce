package objdiff

import "fmt"

// lineArgs gives, for functions that the kernel's macros call with
// __LINE__ as an argument, the position (1-based, System V order: rdi,
// rsi, rdx, rcx, r8, r9) of that argument. Only a register-argument
// position is listed: a line number passed on the stack is never
// ignored. A change of a load into exactly that register before a call
// to the function is noise from an edit above the call, not a change of
// behaviour; any other changed constant (an error code next to it, a
// flag) is a change.
var lineArgs = map[string]int{
	// include/linux/kernel.h, include/asm-generic/bug.h, lockdep.h
	"__might_sleep":          2,
	"__might_resched":        2,
	"__might_fault":          2,
	"__cant_sleep":           2,
	"__cant_migrate":         2,
	"warn_slowpath_fmt":      2,
	"lockdep_rcu_suspicious": 2,
	"__validate_creds":       3,
	// fs/ext4: ext4_error*(), ext4_warning*(), ext4_std_error(),
	// ext4_grp_locked_error(), the journal wrappers and checkers
	"__ext4_error":                     3,
	"__ext4_error_inode":               3,
	"__ext4_error_file":                3,
	"__ext4_std_error":                 3,
	"__ext4_warning":                   3,
	"__ext4_warning_inode":             3,
	"__ext4_grp_locked_error":          2,
	"__ext4_journal_get_write_access":  2,
	"__ext4_journal_get_create_access": 2,
	"__ext4_handle_dirty_metadata":     2,
	"__ext4_forget":                    2,
	"__ext4_journal_start_sb":          2,
	"__ext4_journal_start":             2,
	"__ext4_journal_start_reserved":    2,
	"__ext4_journal_stop":              2,
	"__ext4_mark_inode_dirty":          4,
	"__ext4_ext_dirty":                 2,
	"__ext4_check_dir_entry":           2,
	"__ext4_ext_check":                 2,
	"__ext4_check_blockref":            2,
	"__ext4_iget":                      5,
	"__ext4_read_dirblock":             5,
	"__xattr_check_inode":              5,
	"ext4_journal_abort_handle":        2,
	// fs/btrfs
	"__btrfs_handle_fs_error":   3,
	"__btrfs_abort_transaction": 3,
	"__btrfs_panic":             3,
	"btrfs_assertfail":          3,
	// fs/jbd2, fs/ocfs2, fs/gfs2, fs/xfs
	"__jbd2_debug":           4,
	"__mlog_printk":          3,
	"gfs2_consist_i":         4,
	"gfs2_consist_inode_i":   4,
	"gfs2_consist_rgrpd_i":   4,
	"gfs2_io_error_i":        4,
	"gfs2_io_error_bh_i":     5,
	"gfs2_assert_warn_i":     5,
	"gfs2_assert_withdraw_i": 5,
	"gfs2_meta_check_ii":     6,
	"gfs2_metatype_check_ii": 6,
	"xfs_error_report":       5,
	"xfs_errortag_test":      4,
	"asswarn":                4,
	"assfail":                4,
}

// lineArg returns the __LINE__ argument position of a call target, 0 for
// functions that take none. Compiler clones (foo.constprop.0, foo.isra.0)
// keep their parameters only when not specialised, so only the plain
// name is trusted.
func lineArg(name string) int {
	return lineArgs[name]
}

// argReg maps the register a "mov $imm32, %r32" loads (B8+r, REX.B for
// r8d-r15d) to the System V argument position it passes (0: none).
var argReg = map[int]int{7: 1, 6: 2, 2: 3, 1: 4, 8: 5, 9: 6}

// lineChange is one ignored __LINE__ immediate.
type lineChange struct {
	at       int
	from, to uint32
	callee   string
	arg      int
}

func (c lineChange) String() string {
	return fmt.Sprintf("+%#x: line %d → %d passed to %s (argument %d)", c.at, c.from, c.to, c.callee, c.arg)
}

// lineImmediatesOnly reports whether every byte where ob and pb (the
// masked contents of a function and its twin) differ lies in the 32-bit
// immediate of a "mov $imm32, %reg" whose register is exactly the
// __LINE__ argument of the next function called (lineArgs), and both
// immediates look like line numbers. It returns what it ignored. This is
// the instruction-level second line of defence behind the #line
// directives a build inserts after each changed hunk.
func lineImmediatesOnly(oe, pe *elem, ob, pb []byte) ([]lineChange, bool) {
	calls := callsIn(pe)
	if len(calls) == 0 {
		return nil, false
	}
	var out []lineChange
	for i := 0; i < len(pb); i++ {
		if ob[i] == pb[i] {
			continue
		}
		op := -1
		for j := i - 1; j >= 0 && j >= i-4; j-- {
			if pb[j] >= 0xb8 && pb[j] <= 0xbf && ob[j] == pb[j] && j+5 <= len(pb) {
				op = j
				break
			}
		}
		if op < 0 || i > op+4 {
			return nil, false
		}
		reg := int(pb[op] - 0xb8)
		if op > 0 && ob[op-1] == pb[op-1] {
			switch pb[op-1] {
			case 0x41:
				reg += 8
			case 0x40, 0x48, 0x49, 0x4c, 0x4d:
				// A 64-bit move or another REX form: not a plain
				// 32-bit argument load.
				return nil, false
			}
		}
		arg := argReg[reg]
		imm := func(b []byte) uint32 {
			return uint32(b[op+1]) | uint32(b[op+2])<<8 | uint32(b[op+3])<<16 | uint32(b[op+4])<<24
		}
		from, to := imm(ob), imm(pb)
		if arg == 0 || from == 0 || to == 0 || from > 1<<20 || to > 1<<20 {
			return nil, false
		}
		// The next call after the load must take __LINE__ in that
		// register.
		var next *call
		for k := range calls {
			if calls[k].at > uint64(op+5) {
				next = &calls[k]
				break
			}
		}
		if next == nil || next.at-uint64(op) > 96 || lineArg(next.callee) != arg {
			return nil, false
		}
		out = append(out, lineChange{at: op, from: from, to: to, callee: next.callee, arg: arg})
		i = op + 4
	}
	return out, len(out) > 0
}

// call is one direct call in a function: the offset of its operand and
// the name of its target.
type call struct {
	at     uint64
	callee string
}

// callsIn returns the direct calls (and tail jumps) of e, in order.
func callsIn(e *elem) []call {
	var out []call
	data := e.bytesOf()
	for _, r := range e.side.relocsIn(e.sec, e.off, e.size) {
		if r.Symbol == nil {
			continue
		}
		at := r.Offset - e.off
		if at < 1 || at > uint64(len(data)) || (data[at-1] != 0xe8 && data[at-1] != 0xe9) {
			continue
		}
		name := ""
		t := e.side.target(e.sec, r)
		switch {
		case t.e != nil:
			name = t.e.sym.Name
		case t.undef != nil:
			name = t.undef.Name
		case t.other != nil:
			name = t.other.Name
		}
		out = append(out, call{at: at, callee: name})
	}
	return out
}
