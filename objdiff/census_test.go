package objdiff

import "testing"

// TestStripNumbering checks the names compiler and kernel macros number:
// each number that moves with code above it is dropped, and nothing else.
func TestStripNumbering(t *testing.T) {
	for in, want := range map[string]string{
		"foo.isra.0":            "foo.isra",
		"count.12":              "count",
		"foo.cold":              "foo.cold",
		"__UNIQUE_ID_ddebug412": "__UNIQUE_ID_ddebug",
		"__BTF_ID__func__bpf_lsm_file_open__6691739":       "__BTF_ID__func__bpf_lsm_file_open",
		"__BTF_ID__set8__tracing_btf_ids":                  "__BTF_ID__set8__tracing_btf_ids",
		"__BTF_ID__struct__sock_common__1234":              "__BTF_ID__struct__sock_common",
		"__initcall__kmod_proc__277_26_proc_version_init6": "__initcall__kmod_proc__proc_version_init6",
		"__initcall__kmod_ip6_udp_tunnel__3_10_init4":      "__initcall__kmod_ip6_udp_tunnel__init4",
		"crc16_table": "crc16_table",
		"ip6_frag2":   "ip6_frag2",
	} {
		if got := stripNumbering(in); got != want {
			t.Errorf("stripNumbering(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCensusChange checks how a difference between two censuses is named.
func TestCensusChange(t *testing.T) {
	o := []string{"symbol __BTF_ID__func__a func 0+4", "symbol __BTF_ID__func__b func 4+4", "bytes 00000000"}
	p := []string{"symbol __BTF_ID__func__a func 0+4", "bytes 0000"}
	if sym, why := censusChange(o, p); sym != "__BTF_ID__func__b" || why != "symbol __BTF_ID__func__b removed" {
		t.Errorf("removed symbol: %q, %q", sym, why)
	}
	o = []string{"reloc 12 2 quirk_a+0", "bytes 00"}
	p = []string{"reloc 12 2 quirk_a+0", "reloc 28 2 quirk_a+0", "bytes 00"}
	if sym, why := censusChange(o, p); sym != "quirk_a" || why != "new reference to quirk_a" {
		t.Errorf("new reference: %q, %q", sym, why)
	}
	if _, why := censusChange([]string{"bytes 01"}, []string{"bytes 02"}); why != "its contents change" {
		t.Errorf("changed bytes: %q", why)
	}
}
