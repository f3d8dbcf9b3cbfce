package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ktree"
)

func TestFirstError(t *testing.T) {
	out := `fs/proc/cmdline.c: In function 'cmdline_proc_show':
fs/proc/cmdline.c:9:9: error: 'kelp_undeclared' undeclared (first use in this function)
fs/proc/cmdline.c:9:9: note: each undeclared identifier is reported only once
fs/proc/cmdline.c:12:1: error: expected ';' before '}' token
make[3]: *** [scripts/Makefile.build:250: fs/proc/cmdline.o] Error 1
make[2]: *** [scripts/Makefile.build:500: fs/proc] Error 2
make: *** [Makefile:2012: .] Error 2
`
	if got := ktree.FirstError(out, "x"); got != "fs/proc/cmdline.c:9:9: error: 'kelp_undeclared' undeclared (first use in this function)" {
		t.Errorf("first error = %q", got)
	}
	if got := ktree.FirstError("ld: error: undefined symbol: x\nmake: *** Error 1\n", "x"); got != "ld: error: undefined symbol: x" {
		t.Errorf("tool error = %q", got)
	}
	if got := ktree.FirstError("make: *** Error 1\n", "exit status 2"); got != "exit status 2" {
		t.Errorf("fallback = %q", got)
	}
}

// TestCompileErrorNamed: a patch that does not compile fails with one
// line naming the object and the compiler's first error, in vmlinux and
// in a module.
func TestCompileErrorNamed(t *testing.T) {
	k := testenv.RequireKernel(t)
	for _, c := range []struct{ file, object, context, ident string }{
		{"fs/proc/cmdline.c", "fs/proc/cmdline.o", "\tseq_puts(m, saved_command_line);\n", "kelp_no_such_thing"},
		{"drivers/net/dummy.c", "drivers/net/dummy.o", "\tdev_lstats_read(dev, &stats->tx_packets, &stats->tx_bytes);\n", "kelp_nor_this"},
	} {
		t.Run(c.object, func(t *testing.T) {
			tree, err := k.Tree(context.Background())
			if err != nil {
				testenv.MissingOr(t, err)
			}
			src, err := os.ReadFile(filepath.Join(tree.Dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(string(src), "\n")
			at := -1
			for i, l := range lines {
				if l == c.context {
					at = i
				}
			}
			if at < 0 {
				t.Fatalf("%s: line %q not found", c.file, c.context)
			}
			patch := "--- a/" + c.file + "\n+++ b/" + c.file + "\n@@ -" + strconv.Itoa(at+1) + ",1 +" + strconv.Itoa(at+1) + ",2 @@\n " + c.context + "+\t" + c.ident + "++;\n"
			p := filepath.Join(t.TempDir(), "broken.patch")
			if err := os.WriteFile(p, []byte(patch), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = build.Build(context.Background(), buildOptions(t, k, t.TempDir(), p))
			var ce *ktree.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v; want a compile error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, c.object) || !strings.Contains(msg, c.file+":") ||
				!strings.Contains(msg, "error: ") || !strings.Contains(msg, c.ident) || !strings.Contains(msg, "undeclared") {
				t.Errorf("error %q: want one line naming %s and gcc's error about %s", msg, c.object, c.ident)
			}
			if !strings.Contains(ce.Output, c.ident) {
				t.Errorf("compiler output %q does not mention %s", ce.Output, c.ident)
			}
		})
	}
}
