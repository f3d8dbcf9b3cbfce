package refusal

import (
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	one := New("arch/x86/lib/memcpy_64.S", "assembly cannot be live patched", "change the C code that calls it instead")
	if got, want := one.Error(), "refused: arch/x86/lib/memcpy_64.S: assembly cannot be live patched; change the C code that calls it instead"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	two := &Error{Reasons: []Reason{
		{Unit: "kernel/utsname.o", Symbol: "uts_kern_table", Section: ".data..ro_after_init", Reason: "existing variable moves"},
		{Unit: "fs/ext4/sysfs.o", Symbol: "crc_itu_t", Reason: "exported by module crc_itu_t"},
	}}
	want := "refused (2 reasons): kernel/utsname.o: uts_kern_table (section .data..ro_after_init): existing variable moves; fs/ext4/sysfs.o: crc_itu_t: exported by module crc_itu_t"
	if got := two.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if s := two.Strings(); len(s) != 2 || s[1] != "fs/ext4/sysfs.o: crc_itu_t: exported by module crc_itu_t" {
		t.Errorf("Strings() = %q", s)
	}
	var re *Error
	if wrapped := fmt.Errorf("build: %w", two); !errors.As(wrapped, &re) || re != two {
		t.Errorf("errors.As through a wrap = %v", re)
	}
}
