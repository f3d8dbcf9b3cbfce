package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// moduleRoot is the kelp source tree, found from this file's location so
// the harness works from any test package and from the demo.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate kelp sources")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("kelp sources not found at %s: %w", root, err)
	}
	return root, nil
}

type guestBinaries struct {
	init, kelp []byte
}

// buildGuestBinaries compiles the guest init and kelp as static binaries,
// once per process (the Go build cache makes repeats cheap).
var buildGuestBinaries = sync.OnceValues(func() (guestBinaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return guestBinaries{}, err
	}
	dir, err := os.MkdirTemp("", "kelp-vmtest-bin-")
	if err != nil {
		return guestBinaries{}, err
	}
	defer os.RemoveAll(dir)
	var b guestBinaries
	for _, t := range []struct {
		dst *[]byte
		pkg string
	}{{&b.init, "./internal/vmtest/guestinit"}, {&b.kelp, "./cmd/kelp"}} {
		out := filepath.Join(dir, filepath.Base(t.pkg))
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, t.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return guestBinaries{}, fmt.Errorf("build %s for the guest: %w\n%s", t.pkg, err, stderr.String())
		}
		if *t.dst, err = os.ReadFile(out); err != nil {
			return guestBinaries{}, err
		}
	}
	return b, nil
})
