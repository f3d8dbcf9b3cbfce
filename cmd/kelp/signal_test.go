package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestInterruptLeavesNothing stops kelp build with SIGINT and with SIGTERM
// while it extracts a kernel tree (the longest stage, into an empty cache)
// and checks what is left: nothing in $TMPDIR (its work directory), no
// partial tree in the cache (a lock file may stay: it is the cache's own),
// no output, and the one-line reason with exit 1.
func TestInterruptLeavesNothing(t *testing.T) {
	k := testenv.RequireKernel(t)
	kelp := filepath.Join(buildBinaries(t), "kelp")
	patch := filepath.Join(t.TempDir(), "fix.patch")
	os.WriteFile(patch, []byte("--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -1 +1 @@\n-x\n+y\n"), 0o644)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp, cache, out := t.TempDir(), t.TempDir(), t.TempDir()
			cmd := exec.Command(kelp, "build", "-k", k.Release, "--config", k.Config, "--headers", k.Headers,
				"--cachedir", cache, "-o", out, "--skip-compiler-check", patch)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the extraction to start.
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(stderr.String(), "extracting") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(stderr.String(), "extracting") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kelp build did not start extracting within a minute:\n%s", stderr.String())
			}
			time.Sleep(500 * time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != exitFailure {
				t.Errorf("exit after %v: %v, want status %d", sig, err, exitFailure)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if last := lines[len(lines)-1]; last != "kelp: build: interrupted; no output written" {
				t.Errorf("last line %q", last)
			}
			for dir, allowed := range map[string]string{tmp: "", out: "", cache: ".lock"} {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if allowed == "" || !strings.HasSuffix(e.Name(), allowed) {
						t.Errorf("left behind after %v: %s", sig, filepath.Join(dir, e.Name()))
					}
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer the test reads while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInterruptPackage stops kelp package --self (kelp-package at work)
// with SIGTERM: no package, no temporary file, in $TMPDIR or in the
// output directory.
func TestInterruptPackage(t *testing.T) {
	kelp := filepath.Join(buildBinaries(t), "kelp")
	tmp, out := t.TempDir(), t.TempDir()
	cmd := exec.Command(kelp, "package", "--self", "-o", out)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// kelp-package runs once its temporary directory exists.
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if ms, _ := filepath.Glob(filepath.Join(tmp, "kelp-package-[0-9]*", "*")); len(ms) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("exit after SIGTERM: %v, want status %d (did it finish first?)\n%s", err, exitFailure, stderr.String())
	}
	if !strings.HasSuffix(strings.TrimSpace(stderr.String()), "kelp: package: interrupted; no package written") {
		t.Errorf("stderr: %s", stderr.String())
	}
	for _, dir := range []string{tmp, out} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			t.Errorf("left behind after SIGTERM: %s", filepath.Join(dir, e.Name()))
		}
	}
}
