package testenv

import (
	"errors"
	"os"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where nothing may
// be skipped for lack of an installed package.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireKernel returns the test kernel. When it is not installed the test
// fails under CI and is skipped elsewhere, naming the missing package.
func RequireKernel(t testing.TB) *Kernel {
	t.Helper()
	k, err := DefaultKernel()
	if err != nil {
		Missing(t, err)
	}
	return k
}

// Missing ends the test for a missing prerequisite: a failure under CI,
// a skip naming what to install elsewhere.
func Missing(t testing.TB, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("test environment incomplete: %v", err)
	}
	t.Skipf("test environment incomplete (CI would fail): %v", err)
}

// MissingOr ends the test for err: as Missing when err is an *ErrMissing,
// as a plain failure otherwise.
func MissingOr(t testing.TB, err error) {
	t.Helper()
	var m *ErrMissing
	if errors.As(err, &m) {
		Missing(t, err)
	}
	t.Fatal(err)
}
