package vmtest

import (
	"context"
	"errors"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// RunT boots a guest for a test. A boot failure fails the test with one
// line and the full console log; a missing prerequisite fails under CI and
// skips elsewhere, naming the package to install.
func RunT(t testing.TB, cfg Config) *Result {
	t.Helper()
	if cfg.Kernel == nil {
		cfg.Kernel = testenv.RequireKernel(t)
	}
	if cfg.Log == nil {
		cfg.Log = t.Logf
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		var missing *testenv.ErrMissing
		if errors.As(err, &missing) {
			testenv.Missing(t, err)
		}
		if res.Console != "" {
			t.Logf("guest console:\n%s", res.Console)
		}
		t.Fatalf("%v", err)
	}
	return res
}

// MustStep returns the named step's result and fails the test, with the
// step's output, when it did not run or exited non-zero.
func (r *Result) MustStep(t testing.TB, name string) StepResult {
	t.Helper()
	s, ok := r.Step(name)
	if !ok {
		t.Fatalf("step %q did not report", name)
	}
	if s.Exit != 0 || s.Error != "" {
		t.Logf("guest kernel log:\n%s", r.Dmesg)
		t.Fatalf("step %q failed (exit %d%s)\nstdout:\n%s\nstderr:\n%s", name, s.Exit, errSuffix(s.Error), s.Stdout, s.Stderr)
	}
	return s
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", " + e
}
