package ktree

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/kelp-project/kelp/buildroot"
)

// VersionMismatchError reports a source package of another version than
// the kernel image: its objects would not match the running code.
type VersionMismatchError struct {
	Image, ImageVersion   string
	Source, SourceVersion string
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("kernel source %s %s is not the version of the kernel image %s %s: install %s=%s, or give --sourcedir",
		e.Source, e.SourceVersion, e.Image, e.ImageVersion, e.Source, e.ImageVersion)
}

// debianSource finds the linux-source tarball of the same Debian version
// as the package that installed the kernel image of release: the
// installed one, or, when the installed one is of another version (Debian
// installs one linux-source-<major.minor> at a time) or none is, that
// version's package fetched into the cache below sources (once per
// version).
//
// version, when not empty, is the kernel's Debian version known otherwise
// (a symbols dump's, or that of its headers fetched into the cache); it
// wins over the installed image's.
func debianSource(ctx context.Context, root, release, version, sources string, step func(string)) (string, error) {
	tar, imgVer, err := installedSource(ctx, root, release, version)
	if err == nil || imgVer == "" || root != "" {
		return tar, err
	}
	fetched, ferr := FetchSource(ctx, majorMinor(release), imgVer, sources, step)
	if ferr != nil {
		return "", fmt.Errorf("%w; fetching it failed: %v", err, ferr)
	}
	return fetched, nil
}

// FetchSource returns the tarball of linux-source-<mm> version, downloaded
// with apt-get from the machine's apt sources into sources the first time
// (only the tarball is kept).
func FetchSource(ctx context.Context, mm, version, sources string, step func(string)) (string, error) {
	pkg := "linux-source-" + mm
	dir := filepath.Join(sources, pkg+"_"+strings.ReplaceAll(version, ":", "%3a"))
	tarPath := filepath.Join(dir, "usr", "src", pkg+".tar.xz")
	_, err := Cached(dir, func(dir string) error {
		step("fetching " + pkg + "=" + version + " into " + dir)
		get := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg+"="+version)
		get.Dir = dir
		if out, err := get.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get download %s=%s: %s", pkg, version, lastLine(string(out), err))
		}
		debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
		if len(debs) != 1 {
			return fmt.Errorf("apt-get download %s=%s wrote %d packages", pkg, version, len(debs))
		}
		script := `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "./usr/src/$3.tar.xz"`
		if out, err := exec.CommandContext(ctx, "sh", "-c", script, "sh", debs[0], dir, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("unpack %s: %s", filepath.Base(debs[0]), lastLine(string(out), err))
		}
		return os.Remove(debs[0])
	})
	if err != nil {
		return "", err
	}
	if !fileExists(tarPath) {
		return "", fmt.Errorf("%s lacks %s", dir, tarPath)
	}
	return tarPath, nil
}

// lastLine is the last non-empty line of a command's output, or err.
func lastLine(out string, err error) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// installedSource is the installed linux-source tarball of the image's
// version; imgVer is that version when it is known.
func installedSource(ctx context.Context, root, release, version string) (tar, imgVer string, err error) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return "", "", fmt.Errorf("kernel source for %s: %w; give --sourcedir", release, errNotDebian)
	}
	tars, _ := filepath.Glob(filepath.Join(root, "/usr/src", "linux-source-*.tar.xz"))
	sort.Sort(sort.Reverse(sort.StringSlice(tars)))
	// The packages of the tarballs are asked while the image's version
	// is (each one dpkg-query when the package is the one the name says).
	type owned struct{ pkg, version string }
	srcs := make([]owned, len(tars))
	var wg sync.WaitGroup
	for i, tar := range tars {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if pkg, v, err := dpkgOwner(ctx, strings.TrimPrefix(tar, root)); err == nil && v != "" {
				srcs[i] = owned{pkg, v}
			}
		}()
	}
	var imgPkg string
	if version != "" {
		// The build wanted (a symbols dump's, or that of headers
		// fetched for a kernel not installed) decides.
		imgPkg, imgVer = "linux-headers-"+release, version
	} else if imgPkg, imgVer, err = kernelPackage(ctx, release); err != nil {
		wg.Wait()
		return "", "", err
	}
	wg.Wait()
	if len(tars) == 0 {
		return "", imgVer, fmt.Errorf("kernel source for %s not found (install linux-source-%s=%s, or give --sourcedir)", release, majorMinor(release), imgVer)
	}
	var mismatch error
	for i, tar := range tars {
		srcPkg, srcVer := srcs[i].pkg, srcs[i].version
		if srcPkg == "" {
			continue
		}
		if srcVer == imgVer {
			return tar, imgVer, nil
		}
		if mismatch == nil {
			mismatch = &VersionMismatchError{Image: imgPkg, ImageVersion: imgVer, Source: srcPkg, SourceVersion: srcVer}
		}
	}
	if mismatch != nil {
		return "", imgVer, mismatch
	}
	return "", imgVer, fmt.Errorf("kernel source for %s: %s are not from an installed package (give --sourcedir)", release, strings.Join(tars, ", "))
}

// kernelPackage names the installed package that gives the Debian version
// of release: the package of its image, or on a build machine that does
// not have that kernel installed, its headers package (always of the same
// version as the image and the source).
func kernelPackage(ctx context.Context, release string) (pkg, version string, err error) {
	image := filepath.Join("/boot", "vmlinuz-"+release)
	if pkg, version, err = dpkgOwner(ctx, image); err == nil {
		if version == "" {
			return "", "", fmt.Errorf("package %s is not installed", pkg)
		}
		return pkg, version, nil
	}
	headers := "linux-headers-" + release
	if version, herr := DpkgVersion(ctx, headers); herr == nil {
		return headers, version, nil
	}
	return "", "", fmt.Errorf("kernel %s: neither its image (%s) nor %s is installed; install %s, or give --sourcedir", release, image, headers, headers)
}

// packageListing is the version of an installed package and the files
// it holds (dpkg-query -L: one package's list, not the database's every
// one), asked at once. (dpkg-query -W's db-fsys:Files field gives both in
// one run, but reads every package's list to do so.)
var packageListing = func(ctx context.Context, pkg string) (string, []string, error) {
	var (
		version string
		verErr  error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		version, verErr = DpkgVersion(ctx, pkg)
	}()
	out, err := dpkgQuery(ctx, "-L", pkg)
	wg.Wait()
	if err != nil {
		return "", nil, err
	}
	if verErr != nil {
		return "", nil, verErr
	}
	return version, strings.Split(string(out), "\n"), nil
}

// dpkgOwner is the package that installed path, and its version. The
// package a kernel file comes from is nearly always the one its name says
// (vmlinuz-REL: linux-image-REL, linux-source-X.Y.tar.xz:
// linux-source-X.Y), whose version and file list are asked first;
// dpkg-query -S, which reads every package's list (a quarter of a second
// on a desktop system), answers otherwise.
func dpkgOwner(ctx context.Context, path string) (pkg, version string, err error) {
	base := filepath.Base(path)
	var guess []string
	if rel, ok := strings.CutPrefix(base, "vmlinuz-"); ok {
		guess = []string{"linux-image-" + rel, "linux-image-" + rel + "-unsigned"}
	} else if v, ok := strings.CutPrefix(base, "linux-source-"); ok {
		guess = []string{"linux-source-" + strings.TrimSuffix(v, ".tar.xz")}
	}
	for _, pkg := range guess {
		if version, files, err := packageListing(ctx, pkg); err == nil && slices.Contains(files, path) {
			return pkg, version, nil
		}
	}
	out, err := dpkgQuery(ctx, "-S", path)
	if err != nil {
		return "", "", fmt.Errorf("no package owns %s", path)
	}
	pkg, _, _ = strings.Cut(strings.TrimSpace(string(out)), ":")
	version, _ = DpkgVersion(ctx, pkg)
	return pkg, version, nil
}

// DpkgVersion returns the installed version of a Debian package (an
// error when it is not installed), answered from the record of an
// earlier dpkg-query while dpkg's database is unchanged.
func DpkgVersion(ctx context.Context, pkg string) (string, error) {
	out, err := dpkgQuery(ctx, "-W", "-f", "${Version}", pkg)
	if err != nil || len(out) == 0 {
		return "", fmt.Errorf("package %s is not installed", pkg)
	}
	return strings.TrimSpace(string(out)), nil
}

// dpkgAdmin is dpkg's database: what a dpkg-query answer is read from.
var dpkgAdmin = "/var/lib/dpkg"

// dpkgQuery runs dpkg-query with args. An answer it gave (exit 0) is kept
// on disk under the args and the state of dpkg's database: the keys (path,
// size, modification time) of its status file, which dpkg rewrites when a
// package changes state, of its updates directory, where dpkg journals a
// change before it rewrites the status, and of its diversions. The same
// question on the same database state is answered from the record, without
// a dpkg-query run.
func dpkgQuery(ctx context.Context, args ...string) ([]byte, error) {
	var state []string
	for _, f := range []string{"status", "updates", "diversions"} {
		k, err := FileKey(filepath.Join(dpkgAdmin, f))
		if err != nil && !os.IsNotExist(err) {
			state = nil
			break
		}
		state = append(state, k)
	}
	var record string
	if state != nil {
		if p, err := recordPath("dpkg", Digest(append(append([]string{"dpkg-v1"}, state...), args...)...)); err == nil {
			record = p
			if out, err := os.ReadFile(record); err == nil {
				return out, nil
			}
		}
	}
	out, err := exec.CommandContext(ctx, "dpkg-query", args...).Output()
	if err != nil {
		return nil, err
	}
	if record != "" {
		keepRecord(record, out)
	}
	return out, nil
}

func majorMinor(release string) string {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return release
	}
	return parts[0] + "." + parts[1]
}

// openBuildRoot returns the Debian build root of suite with the kernel
// packages of release in it.
func openBuildRoot(ctx context.Context, suite, release, cache string, step func(string)) (*buildroot.Root, *buildroot.Kernel, error) {
	r, err := buildroot.Open(ctx, buildroot.Options{Suite: suite, CacheDir: cache, Step: step})
	if err != nil {
		return nil, nil, fmt.Errorf("kernel %s is Debian %s's, built with its compiler: %w", release, suite, err)
	}
	k, err := r.Kernel(ctx, release, step)
	if err != nil {
		return nil, nil, err
	}
	return r, k, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
