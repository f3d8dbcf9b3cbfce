package ktree

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// FetchedHeaders is a kernel's headers package unpacked into kelp's cache
// on a build machine that has not installed it.
type FetchedHeaders struct {
	Dir     string // the kbuild directory (usr/src/linux-headers-<release>)
	Version string // the Debian version of the packages
}

// FetchHeaders downloads linux-headers-<release> of version (empty: the
// candidate the machine's apt sources offer), the common headers package
// it depends on and linux-kbuild of the same version, and unpacks the
// three into one directory under cache (once per release and version),
// so that kelp builds for a kernel the build machine neither runs nor has
// installed. The flavour's Makefile, which includes the common headers'
// by their installed path, is pointed at the unpacked copy.
func FetchHeaders(ctx context.Context, release, version, cache string, step func(string)) (*FetchedHeaders, error) {
	pkg := "linux-headers-" + release
	if version == "" {
		v, err := candidateVersion(ctx, pkg)
		if err != nil {
			return nil, err
		}
		version = v
	}
	root := filepath.Join(cache, release+"_"+strings.ReplaceAll(version, ":", "%3a"))
	_, err := Cached(root, func(root string) error {
		step("fetching " + pkg + "=" + version + " and the packages it builds with into " + root)
		deb, err := download(ctx, root, pkg, version)
		if err != nil {
			return err
		}
		common, kbuild, err := headerDeps(ctx, deb, version)
		if err != nil {
			return err
		}
		debs := []string{deb}
		for _, p := range []string{common, kbuild} {
			d, err := download(ctx, root, p, version)
			if err != nil {
				return err
			}
			debs = append(debs, d)
		}
		for _, d := range debs {
			if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", d, root).CombinedOutput(); err != nil {
				return fmt.Errorf("unpack %s: %s", filepath.Base(d), lastLine(string(out), err))
			}
			if err := os.Remove(d); err != nil {
				return err
			}
		}
		return relocateMakefile(filepath.Join(root, "usr/src", pkg, "Makefile"), root)
	})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "usr/src", pkg)
	if !fileExists(filepath.Join(dir, "Module.symvers")) || !fileExists(filepath.Join(dir, ".config")) {
		return nil, fmt.Errorf("%s: the unpacked %s has no Module.symvers or .config", dir, pkg)
	}
	return &FetchedHeaders{Dir: dir, Version: version}, nil
}

// candidateVersion is the version of pkg apt would install.
func candidateVersion(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "policy", pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %s", pkg, lastLine(string(out), err))
	}
	m := regexp.MustCompile(`(?m)^\s*Candidate:\s*(\S+)`).FindSubmatch(out)
	if m == nil || string(m[1]) == "(none)" {
		return "", fmt.Errorf("%s is not in this machine's apt sources (is the kernel release right? give --config and --headers otherwise)", pkg)
	}
	return string(m[1]), nil
}

// download fetches pkg=version into dir and returns the .deb's path.
func download(ctx context.Context, dir, pkg, version string) (string, error) {
	get := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg+"="+version)
	get.Dir = dir
	if out, err := get.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s=%s: %s", pkg, version, lastLine(string(out), err))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s=%s wrote %d packages", pkg, version, len(debs))
	}
	return debs[0], nil
}

// headerDeps names, from a flavour's headers package, the common headers
// package and the kbuild package it builds with; both are taken at the
// headers' own version.
func headerDeps(ctx context.Context, deb, version string) (common, kbuild string, err error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Depends").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s: no Depends field: %v", filepath.Base(deb), err)
	}
	for _, dep := range strings.Split(string(bytes.TrimSpace(out)), ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(dep), " ")
		switch {
		case strings.HasPrefix(name, "linux-headers-") && strings.HasSuffix(name, "-common"):
			common = name
		case strings.HasPrefix(name, "linux-kbuild-"):
			kbuild = name
		}
	}
	if common == "" || kbuild == "" {
		return "", "", fmt.Errorf("%s: its Depends (%s) name no linux-headers-*-common and linux-kbuild-* package", filepath.Base(deb), bytes.TrimSpace(out))
	}
	return common, kbuild, nil
}

// relocateMakefile points the flavour Makefile's include of the common
// headers (by their installed path, /usr/src/...) at the copy under root.
func relocateMakefile(path, root string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	re := regexp.MustCompile(`(?m)^include /usr/src/`)
	if !re.Match(data) {
		return fmt.Errorf("%s: no include of the common headers by their installed path", path)
	}
	data = re.ReplaceAll(data, []byte("include "+filepath.Join(root, "usr/src")+"/"))
	return os.WriteFile(path, data, 0o644)
}

// debianHost reports whether this machine can fetch Debian packages.
func debianHost() bool {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	return true
}
