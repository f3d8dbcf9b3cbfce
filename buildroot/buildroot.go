// Package buildroot keeps Debian build roots: a minimal Debian system of
// another release (made once with debootstrap and cached) holding the
// compiler, kbuild tools, source and headers a target kernel was built
// with, in which kelp runs its compile and link commands. A Debian 12 host
// builds patches for Debian 13's 6.12 kernels this way, with gcc-14,
// without adding anything to the host's own package sources.
//
// Commands run in a private mount namespace (unshare) chrooted into the
// root, with the host directories kelp works in bind-mounted at the same
// paths, so every path kelp passes means the same file inside and out.
package buildroot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Suites maps the Debian release number in a kernel release string
// ("6.12.57+deb13-amd64") to its suite name.
var Suites = map[string]string{"12": "bookworm", "13": "trixie"}

var debRE = regexp.MustCompile(`\+deb([0-9]+)(u[0-9]+)?-`)

// SuiteOf returns the Debian suite a kernel release belongs to: "+debNN-"
// releases name it; Debian 12's 6.1.0-N-<flavour> releases are bookworm.
func SuiteOf(release string) (string, bool) {
	if m := debRE.FindStringSubmatch(release); m != nil {
		s, ok := Suites[m[1]]
		return s, ok
	}
	if regexp.MustCompile(`^6\.1\.0-[0-9]+-`).MatchString(release) {
		return "bookworm", true
	}
	return "", false
}

// HostSuite is the Debian suite of this machine (VERSION_CODENAME of
// /etc/os-release), or "" elsewhere.
func HostSuite() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// Root is a build root: a Debian system tree under Dir.
type Root struct {
	Dir   string
	Suite string
	// Binds are host directories made visible at the same path inside
	// the root while a command runs (the cache, the temporary directory,
	// a work or output directory).
	Binds []string
}

// Bind adds host directories to r.Binds (once each).
func (r *Root) Bind(dirs ...string) {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		if !filepath.IsAbs(d) {
			if abs, err := filepath.Abs(d); err == nil {
				d = abs
			}
		}
		dup := false
		for _, b := range r.Binds {
			if b == d {
				dup = true
			}
		}
		if !dup {
			r.Binds = append(r.Binds, d)
		}
	}
}

// enter mounts the binds, /proc and a /dev of its own in a private mount
// namespace and runs the rest of its arguments (environment, then the
// command) chrooted in the root with a clean environment.
const enter = `set -e
root=$1 n=$2
shift 2
while [ "$n" -gt 0 ]; do
	mkdir -p "$root$1"
	mount --bind "$1" "$root$1"
	shift; n=$((n-1))
done
mount -t proc proc "$root/proc"
` + PrivateDev + `
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 "$@"
`

// PrivateDev is shell that mounts, on "$root/dev", a /dev of the
// root's own: a tmpfs with the device nodes programs expect (null, zero,
// full, random, urandom, tty), a pseudo-terminal instance of its own
// (apt logs through one) and the /dev/fd links. The host's /dev is
// never visible in a root: a package script run there as root that
// replaces /dev/null (or any node) would replace the host's.
const PrivateDev = `mkdir -p "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,size=1m kelp-dev "$root/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	name=${n%%:*} num=${n#*:}
	mknod -m 0666 "$root/dev/$name" c "${num%:*}" "${num#*:}"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 kelp-devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"`

// inDir runs its arguments in the directory given first.
const inDir = `cd "$1" && shift && exec "$@"`

// Command returns cmd name args, run in dir: on the host when r is nil,
// else inside the root. Variables in env (KEY=VALUE) are passed to the
// command in both cases; inside the root they are its whole environment
// (with PATH, HOME, LANG and TMPDIR).
func (r *Root) Command(ctx context.Context, dir string, env []string, name string, args ...string) *exec.Cmd {
	if r == nil {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		if len(env) > 0 {
			cmd.Env = append(os.Environ(), env...)
		}
		return cmd
	}
	binds := append([]string(nil), r.Binds...)
	binds = append(binds, os.TempDir())
	sort.Strings(binds)
	// A directory inside another bound one is visible already.
	var keep []string
	for _, b := range binds {
		if len(keep) > 0 && (b == keep[len(keep)-1] || strings.HasPrefix(b, keep[len(keep)-1]+"/")) {
			continue
		}
		keep = append(keep, b)
	}
	if dir == "" {
		dir, _ = os.Getwd()
	}
	a := []string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", enter, "sh", r.Dir, fmt.Sprint(len(keep))}
	a = append(a, keep...)
	a = append(a, "TMPDIR="+os.TempDir())
	a = append(a, env...)
	a = append(a, "/bin/sh", "-c", inDir, "sh", dir, name)
	a = append(a, args...)
	cmd := exec.CommandContext(ctx, "unshare", a...)
	cmd.Dir = "/"
	return cmd
}

// Run runs a command (see Command) and returns its combined output; on
// failure the error carries the output's last lines.
func (r *Root) Run(ctx context.Context, dir string, name string, args ...string) (string, error) {
	cmd := r.Command(ctx, dir, []string{"DEBIAN_FRONTEND=noninteractive"}, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return string(out), ctx.Err()
		}
		return string(out), fmt.Errorf("%s: %w\n%s", name, err, lastLines(string(out), 20))
	}
	return string(out), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ErrNoRoot reports that the machine cannot make a build root.
var ErrNoRoot = errors.New("a build root needs root privileges, debootstrap and unshare (util-linux)")

// Usable tells whether this machine can make and enter build roots.
func Usable() error {
	if os.Geteuid() != 0 {
		return ErrNoRoot
	}
	for _, p := range []string{"debootstrap", "unshare", "chroot"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%w: %s not found", ErrNoRoot, p)
		}
	}
	return nil
}

// HostPath returns the host's path of the file commands in the root see
// at the absolute path p: p itself under a bound directory, else p
// inside Dir, with the root's symbolic links followed as they are inside
// it (an absolute link target is under Dir too). On the host (r nil) it
// is p.
func (r *Root) HostPath(p string) string {
	if r == nil || !filepath.IsAbs(p) {
		return p
	}
	p = filepath.Clean(p)
	for _, b := range append(append([]string(nil), r.Binds...), os.TempDir()) {
		if p == b || strings.HasPrefix(p, b+"/") {
			return p
		}
	}
	// Resolve p component by component inside the root.
	var done string
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		next := done + "/" + c
		target, err := os.Readlink(filepath.Join(r.Dir, next))
		if err != nil || hops > 40 {
			done = next
			continue
		}
		hops++
		if !filepath.IsAbs(target) {
			target = filepath.Join(done, target)
		}
		rest = append(strings.Split(strings.TrimPrefix(filepath.Clean("/"+target), "/"), "/"), rest...)
		done = ""
	}
	return filepath.Join(r.Dir, done)
}
