package ktree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNull: the host's /dev/null passes; a regular file in its
// place (what a script run as root can leave) and a missing one are
// refused, naming the path and how to restore it.
func TestCheckNull(t *testing.T) {
	if err := checkNull(nullDevice); err != nil {
		t.Fatalf("the host's %s: %v", nullDevice, err)
	}
	file := filepath.Join(t.TempDir(), "null")
	if err := os.WriteFile(file, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := checkNull(file)
	if err == nil || !strings.Contains(err.Error(), file+" is not the null device") || !strings.Contains(err.Error(), "mknod -m 666 "+file+" c 1 3") {
		t.Errorf("a regular file: %v", err)
	}
	if err := checkNull(file + ".missing"); err == nil {
		t.Error("a missing null device is accepted")
	}
	// /dev/zero is a character device, but not the null device.
	if err := checkNull("/dev/zero"); err == nil {
		t.Error("/dev/zero is accepted as the null device")
	}
}
