package ktree

import (
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

// onLines yields the lines of a config that set an option to y or m,
// without their newline.
func onLines(cfg string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for l := range strings.Lines(cfg) {
			l = strings.TrimSuffix(l, "\n")
			if !strings.HasPrefix(l, "CONFIG_") || strings.IndexByte(l, '=') != len(l)-2 || !strings.HasSuffix(l, "=y") && !strings.HasSuffix(l, "=m") {
				continue
			}
			if !yield(l) {
				return
			}
		}
	}
}

// indexLine is where in text, from at on, l is a whole line; -1 if
// nowhere.
func indexLine(text string, at int, l string) int {
	for at <= len(text) {
		i := strings.Index(text[at:], l)
		if i < 0 {
			return -1
		}
		i += at
		end := i + len(l)
		if (i == 0 || text[i-1] == '\n') && (end == len(text) || text[end] == '\n') {
			return i
		}
		at = i + 1
	}
	return -1
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
	data, err := os.ReadFile(filepath.Join(dir, ".config"))
	if err != nil {
		return fmt.Errorf("prepared tree %s: %w", dir, err)
	}
	// Each line of the kernel's that turns an option on must be a line
	// of the tree's. Both configs list the options in Kconfig's order,
	// so each is looked for after the one found before it; from the
	// first that is not there on, in the set of the tree's lines.
	got := string(data)
	var missing []string
	var have map[string]bool
	at := 0
	for l := range onLines(string(cfg)) {
		if have == nil {
			if i := indexLine(got, at, l); i >= 0 {
				at = i + len(l)
				continue
			}
			have = map[string]bool{}
			for t := range onLines(string(data)) {
				have[t] = true
			}
		}
		if !have[l] {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	all := parseConfig(data)
	var diffs []string
	for _, l := range missing {
		k, v := l[:len(l)-2], l[len(l)-1:]
		h, ok := all[k]
		if !ok {
			h = "not set"
		}
		diffs = append(diffs, k+"="+v+" became "+h)
	}
	slices.Sort(diffs)
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("and %d more", len(diffs)-3))
	}
	return fmt.Errorf("prepared tree %s does not have the kernel's configuration: %s (a compiler probe failed while it was prepared, or the compiler differs); remove the tree to prepare it again", dir, strings.Join(diffs, ", "))
}
