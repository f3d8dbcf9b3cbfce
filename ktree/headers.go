package ktree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
// it depends on and linux-kbuild at the version its dependency allows
// (see depVersion), and unpacks the three into one directory under cache
// (once per release and version),
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
		common, kbuild, err := headerDeps(ctx, deb)
		if err != nil {
			return err
		}
		debs := []string{deb}
		for _, dep := range []debDep{common, kbuild} {
			v, newer, err := depVersion(ctx, dep, version)
			if err != nil {
				return err
			}
			if newer {
				step(fmt.Sprintf("%s=%s is not in this machine's apt sources; taking %s, which %s's dependency (%s) allows", dep.name, version, v, pkg, dep))
			}
			d, err := download(ctx, root, dep.name, v)
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

// debDep is one dependency of a package: a name and, when the
// dependency has one, a version relation (op one of =, >=, <=, >>, <<).
type debDep struct{ name, op, version string }

func (d debDep) String() string {
	if d.op == "" {
		return d.name
	}
	return d.name + " (" + d.op + " " + d.version + ")"
}

// parseDep reads one entry of a Depends field, e.g.
// "linux-kbuild-6.1 (>= 6.1.170-3)"; alternatives ("a | b") keep the first.
func parseDep(s string) (debDep, error) {
	s, _, _ = strings.Cut(s, "|")
	s = strings.TrimSpace(s)
	name, rel, hasRel := strings.Cut(s, "(")
	d := debDep{name: strings.TrimSpace(name)}
	if name, _, ok := strings.Cut(d.name, ":"); ok { // an architecture qualifier
		d.name = name
	}
	if !hasRel {
		return d, nil
	}
	rel, ok := strings.CutSuffix(strings.TrimSpace(rel), ")")
	f := strings.Fields(rel)
	if !ok || len(f) != 2 || !slices.Contains([]string{"=", ">=", "<=", ">>", "<<"}, f[0]) {
		return debDep{}, fmt.Errorf("dependency %q: not NAME (OP VERSION)", s)
	}
	d.op, d.version = f[0], f[1]
	return d, nil
}

// headerDeps names, from a flavour's headers package, the common headers
// package and the kbuild package it builds with, with their relations.
func headerDeps(ctx context.Context, deb string) (common, kbuild debDep, err error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Depends").Output()
	if err != nil {
		return common, kbuild, fmt.Errorf("%s: no Depends field: %v", filepath.Base(deb), err)
	}
	for _, entry := range strings.Split(string(bytes.TrimSpace(out)), ",") {
		dep, err := parseDep(entry)
		if err != nil {
			return common, kbuild, fmt.Errorf("%s: %w", filepath.Base(deb), err)
		}
		switch {
		case strings.HasPrefix(dep.name, "linux-headers-") && strings.HasSuffix(dep.name, "-common"):
			common = dep
		case strings.HasPrefix(dep.name, "linux-kbuild-"):
			kbuild = dep
		}
	}
	if common.name == "" || kbuild.name == "" {
		return common, kbuild, fmt.Errorf("%s: its Depends (%s) name no linux-headers-*-common and linux-kbuild-* package", filepath.Base(deb), bytes.TrimSpace(out))
	}
	return common, kbuild, nil
}

// depVersion is the version of dep to fetch beside headers of version:
// an exact dependency's own; else that same version when the apt sources
// have it (the packages the kernel was built with), else the candidate
// apt would install, provided the dependency's relation allows it
// (newer). Debian's headers depend on their common headers at their own
// version (=) but on linux-kbuild at that version or later (>=), and the
// archive keeps only the newest kbuild, so a headers package of an older
// point release is installed, by apt, beside a newer kbuild.
func depVersion(ctx context.Context, dep debDep, version string) (v string, newer bool, err error) {
	if dep.op == "=" {
		return dep.version, false, nil
	}
	if hasVersion(ctx, dep.name, version) {
		return version, false, nil
	}
	cand, err := candidateVersion(ctx, dep.name)
	if err != nil {
		return "", false, err
	}
	if dep.op != "" {
		ok, err := versionRelation(ctx, cand, dep.op, dep.version)
		if err != nil {
			return "", false, err
		}
		if !ok {
			return "", false, fmt.Errorf("%s: neither %s nor a version %s allows is in this machine's apt sources (apt offers %s)", dep.name, version, dep, cand)
		}
	}
	return cand, true, nil
}

// hasVersion reports whether the machine's apt sources offer pkg=version.
func hasVersion(ctx context.Context, pkg, version string) bool {
	out, err := exec.CommandContext(ctx, "apt-cache", "madison", pkg).Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) >= 2 && strings.TrimSpace(f[0]) == pkg && strings.TrimSpace(f[1]) == version {
			return true
		}
	}
	return false
}

// versionRelation reports whether Debian version a stands in relation op
// (=, >=, <=, >>, <<) to b, as dpkg orders versions.
func versionRelation(ctx context.Context, a, op, b string) (bool, error) {
	word := map[string]string{"=": "eq", ">=": "ge", "<=": "le", ">>": "gt", "<<": "lt"}[op]
	if word == "" {
		return false, fmt.Errorf("version relation %q", op)
	}
	err := exec.CommandContext(ctx, "dpkg", "--compare-versions", a, word, b).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, nil
	default:
		return false, fmt.Errorf("dpkg --compare-versions %s %s %s: %v", a, word, b, err)
	}
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
