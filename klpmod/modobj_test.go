package klpmod

import (
	"slices"
	"strings"
	"testing"
)

// modC is NAME.mod.c as Linux 6.1's modpost writes it (CRCs with "%#8x").
const modC = `#include <linux/module.h>
MODULE_INFO(name, KBUILD_MODNAME);

static const struct modversion_info ____versions[]
__used __section("__versions") = {
	{ 0x6689996, "klp_enable_patch" },
	{ 0xbdfb6dbb, "__fentry__" },
	{   0x1234, "short_crc" },
};

MODULE_INFO(depends, "jbd2,mbcache");

`

func TestParseModC(t *testing.T) {
	m, err := parseModC(modC)
	if err != nil {
		t.Fatal(err)
	}
	want := []modVersion{{0x6689996, "klp_enable_patch"}, {0xbdfb6dbb, "__fentry__"}, {0x1234, "short_crc"}}
	if !slices.Equal(m.Versions, want) || m.Depends != "jbd2,mbcache" {
		t.Errorf("versions %v, depends %q; want %v, jbd2,mbcache", m.Versions, m.Depends, want)
	}
	if strings.Contains(m.Skeleton, "0x") || strings.Contains(m.Skeleton, "jbd2") || strings.Count(m.Skeleton, "@VERSIONS@") != 1 {
		t.Errorf("skeleton keeps what varies:\n%s", m.Skeleton)
	}
	// Written back, it reads the same.
	again, err := parseModC(m.source())
	if err != nil {
		t.Fatal(err)
	}
	if again.Skeleton != m.Skeleton || !slices.Equal(again.Versions, m.Versions) || again.Depends != m.Depends {
		t.Errorf("written back: %+v, want %+v", again, m)
	}
}

// A NAME.mod.c that differs from the template's in anything but the
// name, the CRCs and the dependencies is not written from the template
// (the module's is compiled), nor one modpost wrote without __versions.
func TestModObjectRefused(t *testing.T) {
	tmpl, err := parseModC(modC)
	if err != nil {
		t.Fatal(err)
	}
	other, err := parseModC(strings.Replace(modC, "MODULE_INFO(name", "MODULE_ALIAS(\"fs-x\");\nMODULE_INFO(name", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := modObject(nil, tmpl, "kelp_x", other); err == nil || !strings.Contains(err.Error(), "not the template's") {
		t.Errorf("a .mod.c with one more line: error %v", err)
	}
	empty := *tmpl
	empty.Versions = nil
	if _, err := modObject(nil, tmpl, "kelp_x", &empty); err == nil {
		t.Error("a .mod.c without __versions entries written from the template")
	}
	for _, src := range []string{strings.Replace(modC, "MODULE_INFO(depends", "MODULE_INFO(x", 1), strings.Replace(modC, "____versions", "versions", 1)} {
		if _, err := parseModC(src); err == nil {
			t.Errorf("parsed without its depends or __versions:\n%s", src)
		}
	}
}
