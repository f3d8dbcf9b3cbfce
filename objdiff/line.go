package objdiff

import "strings"

// lineHelpers are (parts of) the names of functions that take __LINE__ as
// an argument: a change that only moves such a line number is noise from
// an edit above it, not a change of behaviour.
var lineHelpers = []string{
	"warn", "might_sleep", "might_fault", "might_resched", "printk", "lockdep_rcu_suspicious",
	"_error", "_warning", "_abort", "_msg", "__bug", "panic", "assert", "_std_error",
	"journal_get", "journal_dirty", "handle_dirty", "journal_start", "journal_stop",
}

func lineHelper(name string) bool {
	for _, h := range lineHelpers {
		if strings.Contains(name, h) {
			return true
		}
	}
	return false
}

// lineImmediatesOnly reports whether every byte where ob and pb (the
// masked contents of a function and its twin) differ lies in the 32-bit
// immediate of a "mov $imm32, %reg" (opcode B8+r, optionally after a REX
// prefix) that is followed, within a few instructions, by a call to a
// line-taking helper (one named like a warning or error reporter, or one
// that is also passed __func__), and both immediates look like line
// numbers. This
// is the instruction-level second line of defence behind the #line
// directives a build inserts after each changed hunk.
func lineImmediatesOnly(oe, pe *elem, ob, pb []byte) bool {
	calls := lineCalls(pe)
	if len(calls) == 0 {
		return false
	}
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
		if op < 0 {
			return false
		}
		imm := func(b []byte) uint32 {
			return uint32(b[op+1]) | uint32(b[op+2])<<8 | uint32(b[op+3])<<16 | uint32(b[op+4])<<24
		}
		if imm(ob) > 1<<20 || imm(pb) > 1<<20 {
			return false
		}
		followed := false
		for _, c := range calls {
			if c > uint64(op+5) && c-uint64(op) < 96 {
				followed = true
				break
			}
		}
		if !followed {
			return false
		}
		i = op + 4
	}
	return true
}

// lineCalls returns the offsets (in e) of the calls that may take a
// __LINE__ argument: calls to line-taking helpers, and calls preceded
// closely by a reference to a __func__ string.
func lineCalls(e *elem) []uint64 {
	var out []uint64
	data := e.bytesOf()
	rs := e.side.relocsIn(e.sec, e.off, e.size)
	for i, r := range rs {
		if r.Symbol == nil {
			continue
		}
		at := r.Offset - e.off
		if at < 1 || at > uint64(len(data)) || (data[at-1] != 0xe8 && data[at-1] != 0xe9) {
			continue
		}
		ok := lineHelper(r.Symbol.Name)
		for j := i - 1; j >= 0 && !ok && at-(rs[j].Offset-e.off) < 64; j-- {
			ok = funcName(e.side.target(e.sec, rs[j]))
		}
		if ok {
			out = append(out, at)
		}
	}
	return out
}

// funcName reports whether t is a __func__ string.
func funcName(t target) bool {
	switch {
	case t.e != nil:
		return t.e.key == "__func__"
	case t.sec != nil:
		return strings.Contains(t.sec.Name, "__func__")
	}
	return false
}
