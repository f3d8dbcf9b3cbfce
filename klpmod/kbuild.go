package klpmod

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeKbuild lays out the external-module directory: each unit's
// prepared object, as a prebuilt ("_shipped") object for kbuild and as
// the object itself for the direct link, the init file and the Kbuild
// file linking them into NAME.ko, with data (kelp-data.o, when the init
// file is initC) first. It returns the object names after the init file.
func writeKbuild(dir string, opts Options, preps []*prepared, initC string, data []byte) ([]string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var objs []string
	if data != nil {
		for _, f := range []string{"kelp-data.o", "kelp-data.o_shipped"} {
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				return nil, err
			}
		}
		objs = append(objs, "kelp-data.o")
	}
	for _, p := range preps {
		obj := fmt.Sprintf("kelp-u%d.o", p.index)
		data, err := p.obj.Encode()
		if err != nil {
			return nil, fmt.Errorf("write %s (unit %s): %w", obj, p.unit.Diff.Report.Unit, err)
		}
		for _, f := range []string{obj, obj + "_shipped"} {
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				return nil, err
			}
		}
		objs = append(objs, obj)
	}
	return objs, layout(dir, opts.Name, objs, initC)
}

// KbuildError is a failed kbuild link; Error() is one line, Output the
// whole log.
type KbuildError struct {
	Err    error
	Output string
}

func (e *KbuildError) Error() string {
	return fmt.Sprintf("kbuild link: %v: %s", e.Err, lastLines(e.Output, 3))
}

func (e *KbuildError) Unwrap() error { return e.Err }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// runKbuild runs "make -C <headers> M=<dir> modules"; with noDebug the
// init file and NAME.mod.c are compiled without debug information, as
// the direct link's objects written without a compiler have none.
func runKbuild(ctx context.Context, dir string, opts Options, jobs int, noDebug bool) error {
	if opts.Jobs > 0 {
		jobs = opts.Jobs
	}
	mk := opts.Make
	if mk == "" {
		mk = "make"
	}
	// Keep the work directory out of the debug information (of the init
	// file and of modpost's NAME.mod.c), so the same inputs give the same
	// module wherever they are built.
	kcflags := strings.TrimSpace(os.Getenv("KCFLAGS") + " -ffile-prefix-map=" + dir + "=.")
	if noDebug {
		kcflags += " -g0"
	}
	cmd := opts.Exec.Command(ctx, dir, []string{"KCFLAGS=" + kcflags}, mk, "-C", opts.Headers, "M="+dir, fmt.Sprintf("-j%d", jobs), "modules")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return &KbuildError{Err: err, Output: out.String()}
	}
	if _, err := os.Stat(filepath.Join(dir, opts.Name+".ko")); err != nil {
		return &KbuildError{Err: err, Output: out.String()}
	}
	return nil
}
