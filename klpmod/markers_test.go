package klpmod

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/kmod"
	"testing"
)

// callbacksPatch changes /proc/cmdline and declares, with kpatch's macro
// names, the four callbacks (each logging its name and object), a state,
// a force-unsafe function, and reads the state back in post-patch.
func callbacksPatch(t testing.TB) []byte {
	inc, err := filepath.Abs("include")
	if err != nil {
		t.Fatal(err)
	}
	// The compilation cache keys on the patch text: name the headers'
	// contents in it.
	h := sha256.New()
	for _, f := range []string{"kpatch-macros.h", "kelp/patch.h"} {
		data, err := os.ReadFile(filepath.Join(inc, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(data)
	}
	added := []string{
		fmt.Sprintf("/* headers %x */", h.Sum(nil)[:8]),
		`#include "` + inc + `/kpatch-macros.h"`,
		``,
		`static int kelp_pre_patch(patch_object *obj)`,
		`{`,
		`	pr_info("kelp-test: pre_patch %s\n", obj->name ? obj->name : "vmlinux");`,
		`	return 0;`,
		`}`,
		`static void kelp_post_patch(patch_object *obj)`,
		`{`,
		`	struct klp_state *s = kelp_get_state(42);`,
		``,
		`	pr_info("kelp-test: post_patch %s state %lu version %u\n", obj->name ? obj->name : "vmlinux", s ? s->id : 0UL, s ? s->version : 0U);`,
		`}`,
		`static void kelp_pre_unpatch(patch_object *obj)`,
		`{`,
		`	pr_info("kelp-test: pre_unpatch %s\n", obj->name ? obj->name : "vmlinux");`,
		`}`,
		`static void kelp_post_unpatch(patch_object *obj)`,
		`{`,
		`	pr_info("kelp-test: post_unpatch %s\n", obj->name ? obj->name : "vmlinux");`,
		`}`,
		`KPATCH_PRE_PATCH_CALLBACK(kelp_pre_patch);`,
		`KPATCH_POST_PATCH_CALLBACK(kelp_post_patch);`,
		`KPATCH_PRE_UNPATCH_CALLBACK(kelp_pre_unpatch);`,
		`KPATCH_POST_UNPATCH_CALLBACK(kelp_post_unpatch);`,
		`KELP_STATE(42, 3);`,
		`KPATCH_FORCE_UNSAFE(cmdline_proc_show);`,
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -3,10 +3,%d @@\n", 10+len(added))
	b.WriteString(" #include <linux/init.h>\n #include <linux/proc_fs.h>\n #include <linux/seq_file.h>\n")
	for _, l := range added {
		b.WriteString("+" + l + "\n")
	}
	b.WriteString(" \n static int cmdline_proc_show(struct seq_file *m, void *v)\n {\n \tseq_puts(m, saved_command_line);\n")
	b.WriteString("-\tseq_putc(m, '\\n');\n+\tseq_puts(m, \" kelp.patched=1\\n\");\n \treturn 0;\n }\n")
	return []byte(b.String())
}

// TestMarkers builds the callbacks patch: the four callbacks are wired
// into vmlinux's klp_object, the state into klp_patch.states, the
// force-unsafe function into the report and .modinfo.
func TestMarkers(t *testing.T) {
	k := testenv.RequireKernel(t)
	m := buildMarkers(t, k)
	if len(m.Objects) != 1 || m.Objects[0].Name != "vmlinux" {
		t.Fatalf("objects %+v", m.Objects)
	}
	var kinds []string
	for _, c := range m.Objects[0].Callbacks {
		kinds = append(kinds, c.Kind+":"+c.Func)
	}
	want := []string{"pre_patch:kelp_pre_patch", "post_patch:kelp_post_patch", "pre_unpatch:kelp_pre_unpatch", "post_unpatch:kelp_post_unpatch"}
	if !slices.Equal(kinds, want) {
		t.Errorf("callbacks %q, want %q", kinds, want)
	}
	if !slices.Equal(m.States, []State{{ID: 42, Version: 3}}) {
		t.Errorf("states %+v", m.States)
	}
	if !slices.Equal(m.ForceUnsafe, []string{"cmdline_proc_show"}) {
		t.Errorf("force unsafe %q", m.ForceUnsafe)
	}
	km, err := kmod.Open(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := km.Info["kelp.force_unsafe"]; !slices.Equal(got, []string{"cmdline_proc_show"}) {
		t.Errorf("modinfo kelp.force_unsafe = %q", got)
	}
}

func buildMarkers(t *testing.T, k *testenv.Kernel) *Module {
	t.Helper()
	units := diffUnits(t, k, callbacksPatch(t))
	m, err := Build(context.Background(), units, Options{Name: "kelp_callbacks", Kernel: k.Release, Headers: k.Headers, Replace: true, WorkDir: t.TempDir()})
	if err != nil {
		logKbuild(t, err)
		t.Fatal(err)
	}
	return m
}
