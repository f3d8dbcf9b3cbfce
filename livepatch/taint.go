package livepatch

import "strings"

// TaintFlag is one bit of /proc/sys/kernel/tainted.
type TaintFlag struct {
	Bit    uint
	Letter byte
	Reason string
}

// TaintFlags lists the kernel's taint bits (include/linux/panic.h).
var TaintFlags = []TaintFlag{
	{0, 'P', "proprietary module loaded"},
	{1, 'F', "module force-loaded"},
	{2, 'S', "SMP with CPUs not designed for SMP"},
	{3, 'R', "module force-unloaded"},
	{4, 'M', "machine check exception"},
	{5, 'B', "bad page referenced"},
	{6, 'U', "taint requested by user space"},
	{7, 'D', "kernel died recently (oops or BUG)"},
	{8, 'A', "ACPI table overridden"},
	{9, 'W', "kernel issued a warning"},
	{10, 'C', "staging driver loaded"},
	{11, 'I', "firmware bug worked around"},
	{12, 'O', "out-of-tree module loaded"},
	{13, 'E', "unsigned module loaded"},
	{14, 'L', "soft lockup occurred"},
	{15, 'K', "kernel live patched"},
	{16, 'X', "auxiliary taint"},
	{17, 'T', "built with struct randomization"},
	{18, 'N', "in-kernel test run"},
}

// DecodeTaint returns the flags set in a tainted value, lowest bit first.
// Bits the table does not know are reported as "bit N".
func DecodeTaint(v uint64) []TaintFlag {
	var out []TaintFlag
	for bit := uint(0); bit < 64; bit++ {
		if v&(1<<bit) == 0 {
			continue
		}
		if int(bit) < len(TaintFlags) {
			out = append(out, TaintFlags[bit])
		} else {
			out = append(out, TaintFlag{Bit: bit, Letter: '?', Reason: "unknown taint bit"})
		}
	}
	return out
}

// TaintString renders a tainted value the way the kernel's oops header does
// (one letter per known flag, '-' for a clear one), e.g. "-----------OE--K---".
func TaintString(v uint64) string {
	var b strings.Builder
	for _, f := range TaintFlags {
		if v&(1<<f.Bit) != 0 {
			b.WriteByte(f.Letter)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}
