package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestManPages: kelp(8) and a page per command, each with the sections a
// Debian man page has, and man renders them without a warning.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	root := newRootCmd(&globals{stdout: io.Discard, stderr: io.Discard})
	if err := writeManPages(root, dir, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	want := []string{"kelp.8"}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			want = append(want, "kelp-"+c.Name()+".8")
		}
	}
	for _, name := range want {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, s := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"} {
			if !strings.Contains(string(data), "\n.SH "+s+"\n") {
				t.Errorf("%s has no %s section", name, s)
			}
		}
		if _, err := exec.LookPath("man"); err != nil {
			continue
		}
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", filepath.Join(dir, name))
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man %s: %v\n%s", name, err, stderr.String())
		}
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "*.8")); len(got) != len(want) {
		t.Errorf("pages %v, want %v", got, want)
	}
}
