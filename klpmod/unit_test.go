package klpmod

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/objdiff"
)

func TestOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{Name: "Bad-Name", Headers: dir, WorkDir: dir}, "module name"},
		{Options{Name: strings.Repeat("a", 56), Headers: dir, WorkDir: dir}, "module name"},
		{Options{Name: "ok", WorkDir: dir}, "kbuild directory"},
		{Options{Name: "ok", Headers: dir}, "work directory"},
		{Options{Name: "ok", Headers: dir, WorkDir: dir, SignKey: "k"}, "both a key and a certificate"},
		{Options{Name: "ok", Headers: dir, WorkDir: dir}, "Makefile"},
	} {
		_, err := Build(context.Background(), nil, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one about %q", c.opts, err, c.want)
		}
	}
}

func TestNothingToPatch(t *testing.T) {
	dir := t.TempDir()
	headers := t.TempDir()
	writeFile(t, headers+"/Makefile", "")
	units := []Unit{{Object: "vmlinux", Diff: &objdiff.Result{Report: &objdiff.Report{Unit: "fs/proc/cmdline.o"}}}}
	_, err := Build(context.Background(), units, Options{Name: "x", Headers: headers, WorkDir: dir})
	if err == nil || !strings.Contains(err.Error(), "replaces no function") {
		t.Fatalf("error %v", err)
	}
	_, err = Build(context.Background(), []Unit{{Object: "vmlinux"}}, Options{Name: "x", Headers: headers, WorkDir: dir, Modinfo: map[string]string{"livepatch": "N"}})
	if err == nil || !strings.Contains(err.Error(), "set by the build") {
		t.Fatalf("error %v", err)
	}
}

func TestCString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:       `"plain"`,
		`a"b\c`:       `"a\"b\\c"`,
		"nl\n1":       `"nl\0121"`,
		"??=":         `"\077\077="`,
		"caf\xc3\xa9": `"caf\303\251"`,
	} {
		if got := cString(in); got != want {
			t.Errorf("cString(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestInitSource checks the generated init file: one klp_object per
// owner (vmlinux first, with a NULL name), callbacks in declaration order
// for patching and reverse order for unpatching, states, replace, modinfo.
func TestInitSource(t *testing.T) {
	objs := []*object{
		{name: "vmlinux", cIdent: "0", funcs: []Func{{OldName: "cmdline_proc_show", NewFunc: "__kelp_u0_cmdline_proc_show"}}, cbs: map[string][]Callback{
			"pre_patch":   {{Symbol: "__kelp_u0_a"}, {Symbol: "__kelp_u1_b"}},
			"pre_unpatch": {{Symbol: "__kelp_u0_c"}, {Symbol: "__kelp_u1_d"}},
		}},
		{name: "ext4", cIdent: "1", funcs: []Func{{OldName: "ext4_attr_show", Sympos: 2, NewFunc: "__kelp_u2_ext4_attr_show"}}, cbs: map[string][]Callback{}},
	}
	src := initSource("p", objs, []State{{ID: 7, Version: 2}}, false, [][2]string{{"kelp.kernel", "6.1.0-56-amd64"}}, nil)
	for _, want := range []string{
		`{ .old_name = "cmdline_proc_show", .new_func = __kelp_u0_cmdline_proc_show, .old_sympos = 0 },`,
		`{ .old_name = "ext4_attr_show", .new_func = __kelp_u2_ext4_attr_show, .old_sympos = 2 },`,
		"\t\t.name = NULL,\n\t\t.funcs = kelp_funcs_0,",
		"\t\t.name = \"ext4\",\n\t\t.funcs = kelp_funcs_1,",
		"ret = __kelp_u0_a(obj);\n\tif (ret)\n\t\treturn ret;\n\tret = __kelp_u1_b(obj);",
		"\t__kelp_u1_d(obj);\n\t__kelp_u0_c(obj);",
		".pre_patch = kelp_pre_patch_0,",
		"{ .id = 7UL, .version = 2 },",
		".states = kelp_states,",
		".replace = false,",
		`MODULE_INFO(livepatch, "Y");`,
		`__section(".modinfo") __aligned(1) = "kelp.kernel=6.1.0-56-amd64";`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("init source lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(src, ".post_patch =") {
		t.Errorf("init source sets a callback nobody declared:\n%s", src)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
