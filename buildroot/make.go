package buildroot

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/internal/sys"
)

// Packages are what a build root holds besides the minimal base: the
// compiler and everything kbuild runs to prepare a tree, compile objects
// and link modules.
var Packages = []string{
	"gcc", "gcc-14", "libc6-dev", "make", "binutils", "bison", "flex", "bc", "perl",
	"libelf-dev", "libssl-dev", "dwarves", "kmod", "xz-utils", "cpio", "openssl", "python3",
}

// Options say which build root to make and where.
type Options struct {
	Suite string // e.g. "trixie"
	// CacheDir holds the roots (default $XDG_CACHE_HOME/kelp/roots).
	CacheDir string
	// Mirror is the Debian archive to use; default KELP_DEBIAN_MIRROR, else
	// the one the host's own apt sources name.
	Mirror string
	// Step reports long steps before they start.
	Step func(string)
}

// DefaultCacheDir is $XDG_CACHE_HOME/kelp/roots (~/.cache/kelp/roots).
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(base, "kelp", "roots"), nil
}

// Open returns the build root of opts.Suite, making it the first time
// (debootstrap --variant=minbase plus Packages). An interrupted attempt
// is wiped and made again; concurrent processes wait for each other.
func Open(ctx context.Context, opts Options) (*Root, error) {
	if err := Usable(); err != nil {
		return nil, err
	}
	if opts.Suite == "" {
		return nil, fmt.Errorf("build root: no suite given")
	}
	cache := opts.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	step := opts.Step
	if step == nil {
		step = func(string) {}
	}
	r := &Root{Dir: filepath.Join(cache, opts.Suite), Suite: opts.Suite}
	r.Bind(filepath.Dir(cache))
	done := filepath.Join(r.Dir, ".kelp-complete")
	want := strings.Join(Packages, " ") + "\n"
	if b, err := os.ReadFile(done); err == nil && string(b) == want {
		return r, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(r.Dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if b, err := os.ReadFile(done); err == nil {
		if string(b) == want {
			return r, nil
		}
		// A root made when kelp needed fewer packages gets the others.
		step(fmt.Sprintf("installing %s into the build root %s", strings.Join(Packages, " "), r.Dir))
		if err := copyResolvConf(r.Dir); err != nil {
			return nil, err
		}
		if _, err := r.Run(ctx, "/", "apt-get", "update", "-qq"); err != nil {
			return nil, fmt.Errorf("build root %s: %w", r.Dir, err)
		}
		if _, err := r.Run(ctx, "/", "apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, Packages...)...); err != nil {
			return nil, fmt.Errorf("build root %s: %w", r.Dir, err)
		}
		return r, os.WriteFile(done, []byte(want), 0o644)
	}
	mirror, security, err := mirrors(opts.Mirror)
	if err != nil {
		return nil, err
	}
	if err := sys.RemoveAll(r.Dir); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("making the Debian %s build root %s (debootstrap from %s)", opts.Suite, r.Dir, mirror))
	args := []string{"--variant=minbase", "--components=main", "--include=" + strings.Join(Packages, ","), opts.Suite, r.Dir, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		sys.RemoveAll(r.Dir)
		return nil, fmt.Errorf("debootstrap %s: %w\n%s", opts.Suite, err, lastLines(string(out), 15))
	}
	sources := fmt.Sprintf("deb %s %s main\ndeb %s %s-updates main\n", mirror, opts.Suite, mirror, opts.Suite)
	if security != "" {
		sources += fmt.Sprintf("deb %s %s-security main\n", security, opts.Suite)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		return nil, err
	}
	// Kernel images installed in the root need no initramfs: it is never
	// booted.
	if _, err := r.Run(ctx, "/", "/bin/sh", "-c", "dpkg-divert --local --rename --add /usr/sbin/update-initramfs && ln -sf /bin/true /usr/sbin/update-initramfs"); err != nil {
		return nil, fmt.Errorf("build root %s: %w", r.Dir, err)
	}
	if err := os.WriteFile(done, []byte(want), 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// mirrors returns the Debian archive and security archive URIs: given,
// KELP_DEBIAN_MIRROR, or those of the host's apt sources (the entries for
// the host's suite and its -security suite).
func mirrors(given string) (archive, security string, err error) {
	if given == "" {
		given = os.Getenv("KELP_DEBIAN_MIRROR")
	}
	host := HostSuite()
	var files []string
	for _, g := range []string{"/etc/apt/sources.list", "/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for _, f := range files {
		for _, e := range aptEntries(f) {
			for _, s := range e.suites {
				switch {
				case archive == "" && host != "" && s == host:
					archive = e.uri
				case security == "" && host != "" && (s == host+"-security" || s == host+"/updates"):
					security = e.uri
				}
			}
		}
	}
	if given != "" {
		archive = given
	}
	if archive == "" {
		return "", "", fmt.Errorf("no Debian archive for a build root: the host's apt sources name none for %q; set KELP_DEBIAN_MIRROR", host)
	}
	return strings.TrimRight(archive, "/"), strings.TrimRight(security, "/"), nil
}

type aptEntry struct {
	uri    string
	suites []string
}

// aptEntries reads the "deb" entries of a one-line (.list) or deb822
// (.sources) apt sources file.
func aptEntries(path string) []aptEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []aptEntry
	sc := bufio.NewScanner(f)
	if strings.HasSuffix(path, ".sources") {
		var cur aptEntry
		deb := false
		flush := func() {
			if deb && cur.uri != "" {
				out = append(out, cur)
			}
			cur, deb = aptEntry{}, false
		}
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" {
				flush()
				continue
			}
			k, v, ok := strings.Cut(l, ":")
			if !ok || strings.HasPrefix(l, "#") {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.ToLower(k) {
			case "types":
				deb = strings.Contains(" "+v+" ", " deb ")
			case "uris":
				cur.uri = strings.Fields(v)[0]
			case "suites":
				cur.suites = strings.Fields(v)
			}
		}
		flush()
		return out
	}
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || fs[0] != "deb" {
			continue
		}
		fs = fs[1:]
		if strings.HasPrefix(fs[0], "[") {
			for len(fs) > 0 && !strings.HasSuffix(fs[0], "]") {
				fs = fs[1:]
			}
			if len(fs) > 0 {
				fs = fs[1:]
			}
		}
		if len(fs) >= 2 {
			out = append(out, aptEntry{uri: fs[0], suites: []string{fs[1]}})
		}
	}
	return out
}

// lock takes an exclusive lock on path (created if needed).
func lock(path string) (func(), error) { return sys.LockPath(path) }
