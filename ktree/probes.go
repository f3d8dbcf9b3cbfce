package ktree

import (
	"bytes"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kelp-project/kelp/internal/sys"
)

// nullDevice is the host's null device.
const nullDevice = "/dev/null"

// checkNull refuses to work with a null device (path, /dev/null) that is
// not one. kbuild probes the compiler for every optional flag by
// compiling /dev/null and keeps a flag only when that succeeds; were
// /dev/null a file with something in it (a script run as root can leave
// one there), each probe would fail, the flags would silently go missing
// from every command, and kelp would compile code unlike the running
// kernel's.
func checkNull(path string) error {
	ok, err := sys.IsCharDevice(path, 1, 3)
	if err != nil {
		return fmt.Errorf("%s: %w: kbuild's compiler probes need the null device", path, err)
	}
	if !ok {
		return fmt.Errorf("%s is not the null device (character device 1,3): kbuild's compiler probes compile it and would drop flags the kernel was built with; restore it (as root: rm %s; mknod -m 666 %s c 1 3)", path, path, path)
	}
	return nil
}

// onOptions yields the options of a config set to y or m, and their value.
func onOptions(cfg string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for l := range strings.Lines(cfg) {
			l = strings.TrimSuffix(l, "\n")
			if !strings.HasPrefix(l, "CONFIG_") || strings.IndexByte(l, '=') != len(l)-2 || !strings.HasSuffix(l, "=y") && !strings.HasSuffix(l, "=m") {
				continue
			}
			if !yield(l[:len(l)-2], l[len(l)-1:]) {
				return
			}
		}
	}
}

// checkPrepared refuses a prepared tree in which an option the kernel's
// config turns on (y or m) is off or changed: the configuration step
// probes the compiler (CONFIG_CC_HAS_*, CONFIG_AS_*, ...) and a failed
// probe silently turns an option off, so the tree would compile unlike
// the running kernel. Strings and numbers are not compared: Debian's two
// configs of one kernel (the image's and the headers package's) differ
// in some (CONFIG_BUILD_SALT, CONFIG_MODULE_SIG_KEY), kelp empties the
// certificate files, and the compiler's version is checkCompiler's.
// Options the kernel's config does not turn on may be added
// (olddefconfig writes defaults for them).
func checkPrepared(dir string, cfg []byte) error {
	got, err := os.ReadFile(filepath.Join(dir, ".config"))
	if err != nil {
		return fmt.Errorf("prepared tree %s: %w", dir, err)
	}
	// The options the tree turns on, then each the kernel turns on
	// looked up in them: the whole of either config is read only when
	// they differ.
	have := make(map[string]string, bytes.Count(got, []byte("=y\n"))+bytes.Count(got, []byte("=m\n")))
	for k, v := range onOptions(string(got)) {
		have[k] = v
	}
	var diffs []string
	var all map[string]string
	for k, v := range onOptions(string(cfg)) {
		if have[k] == v {
			continue
		}
		if all == nil {
			all = parseConfig(got)
		}
		h, ok := all[k]
		if !ok {
			h = "not set"
		}
		diffs = append(diffs, k+"="+v+" became "+h)
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("and %d more", len(diffs)-3))
	}
	return fmt.Errorf("prepared tree %s does not have the kernel's configuration: %s (a compiler probe failed while it was prepared, or the compiler differs); remove the tree to prepare it again", dir, strings.Join(diffs, ", "))
}
