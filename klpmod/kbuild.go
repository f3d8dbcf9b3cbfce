package klpmod

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeKbuild lays out the external-module directory: the init file, each
// unit's prepared object as a prebuilt ("_shipped") object, and the Kbuild
// file linking them into NAME.ko.
func writeKbuild(dir string, opts Options, preps []*prepared, initC string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	objs := []string{"kelp-init.o"}
	for _, p := range preps {
		obj := fmt.Sprintf("kelp-u%d.o", p.index)
		if err := p.obj.WriteFile(filepath.Join(dir, obj+"_shipped")); err != nil {
			return fmt.Errorf("write %s (unit %s): %w", obj, p.unit.Diff.Report.Unit, err)
		}
		// modpost reads the MODVERSIONS CRCs an object exports from its
		// kbuild command record; a prebuilt unit exports nothing.
		if err := os.WriteFile(filepath.Join(dir, "."+obj+".cmd"), []byte("# prebuilt by kelp build\n"), 0o644); err != nil {
			return err
		}
		objs = append(objs, obj)
	}
	if err := os.WriteFile(filepath.Join(dir, "kelp-init.c"), []byte(initC), 0o644); err != nil {
		return err
	}
	// The file names contain '-', so none can be the module's own
	// object (module names are [a-z0-9_]).
	kbuild := fmt.Sprintf("obj-m := %s.o\n%s-y := %s\n", opts.Name, opts.Name, strings.Join(objs, " "))
	return os.WriteFile(filepath.Join(dir, "Kbuild"), []byte(kbuild), 0o644)
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

// runKbuild runs "make -C <headers> M=<dir> modules".
func runKbuild(ctx context.Context, dir string, opts Options, jobs int) error {
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
