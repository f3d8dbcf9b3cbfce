// Package packaging turns livepatch modules, and kelp itself, into .deb and
// .rpm packages with nfpm, so patches travel through the apt/dnf
// repositories and configuration management an admin already runs.
//
// A patch package ships its module under /usr/lib/kelp/patches/<release>/;
// its post-install script installs it into the patch store and loads it
// when the running kernel is the one it targets; removal unloads it (if
// loaded) and uninstalls it. It depends on kelp only: the kernel it
// targets is in its name (kelp-patch-NAME-<release>), so a host installs
// the package of the kernel it runs and never pulls in another kernel.
// Output is reproducible: file times and package dates
// come from SOURCE_DATE_EPOCH (or, for patches, the module's own mtime).
package packaging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager

	"github.com/kelp-project/kelp/kmod"
)

// Formats kelp can write.
var Formats = []string{"deb", "rpm"}

// PatchOptions describe a patch package. Empty fields get defaults derived
// from the module.
type PatchOptions struct {
	Module      string // path to the livepatch .ko
	Format      string // deb or rpm
	Name        string // default kelp-patch-<module>-<release>
	Version     string // default 1.0.0
	Release     string // package release, default 1
	Maintainer  string
	Description string
	// KelpBinary is how the scripts run kelp (default kelp, on the PATH
	// dpkg and rpm give maintainer scripts).
	KelpBinary string
	// KelpVersion is the version of the kelp that built the patch: the
	// package depends on it or newer.
	KelpVersion string
}

// Package is a written package.
type Package struct {
	Format  string   `json:"format"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
	File    string   `json:"file"`
	Module  string   `json:"module,omitempty"`
	Kernel  string   `json:"kernel,omitempty"`
	Depends []string `json:"depends"`
}

var debName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// DefaultMaintainer is the maintainer when none is given and
// DEBFULLNAME/DEBEMAIL (as dch reads them) do not name one.
const DefaultMaintainer = "kelp project <kelp-project@users.noreply.github.com>"

// maintainer returns m, else "$DEBFULLNAME <$DEBEMAIL>", else
// DefaultMaintainer.
func maintainer(m string) string {
	if m != "" {
		return m
	}
	if email := os.Getenv("DEBEMAIL"); email != "" {
		if name := os.Getenv("DEBFULLNAME"); name != "" {
			return name + " <" + email + ">"
		}
		return email
	}
	return DefaultMaintainer
}

// Epoch returns SOURCE_DATE_EPOCH when set, else fallback: the time
// written into packages so that the same inputs give the same bytes.
func Epoch(fallback time.Time) (time.Time, error) {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return fallback.UTC().Truncate(time.Second), nil
}

func checkFormat(f string) error {
	for _, ok := range Formats {
		if f == ok {
			return nil
		}
	}
	return fmt.Errorf("unsupported package format %q (deb or rpm)", f)
}

// BuildPatch writes a patch package into dir.
func BuildPatch(o PatchOptions, dir string) (*Package, error) {
	if err := checkFormat(o.Format); err != nil {
		return nil, err
	}
	m, err := kmod.Open(o.Module)
	if err != nil {
		return nil, err
	}
	if !m.Livepatch {
		return nil, fmt.Errorf("%s: not a livepatch module (no livepatch=Y in .modinfo)", o.Module)
	}
	rel := kmod.Release(m.Vermagic)
	st, err := os.Stat(o.Module)
	if err != nil {
		return nil, err
	}
	mtime, err := Epoch(st.ModTime())
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "kelp-patch-" + strings.ReplaceAll(strings.ToLower(m.Name), "_", "-") + "-" + rel
	}
	if !debName.MatchString(o.Name) {
		return nil, fmt.Errorf("package name %q: use lower-case letters, digits, '+', '-' and '.'", o.Name)
	}
	if o.Version == "" {
		o.Version = "1.0.0"
	}
	o.Maintainer = maintainer(o.Maintainer)
	if o.Release == "" {
		o.Release = "1"
	}
	if o.Description == "" {
		o.Description = fmt.Sprintf("live patch %s for Linux %s", m.Name, rel)
	}
	fixes := kmod.FixesOf(m.Info)
	if !strings.Contains(o.Description, "\n") {
		// Debian wants a synopsis and an extended description.
		text := fmt.Sprintf("The livepatch module %s, built by kelp for the kernel %s. Installing the package installs it into kelp's patch store and applies it to the running kernel when that is %s; kelp.service applies it at every boot of that kernel. Removing the package unloads it.", m.Name, rel, rel)
		if s := fixes.Summary(); s != "" {
			text = s + ". " + text
		}
		if len(fixes.CVEs) > 0 {
			text += " Fixes " + strings.Join(fixes.CVEs, ", ") + "."
		}
		o.Description += "\n" + wrap(text)
	}
	kelp := o.KelpBinary
	if kelp == "" {
		kelp = "kelp"
	}
	if o.KelpVersion == "" {
		return nil, fmt.Errorf("the version of kelp the patch needs is not set")
	}
	kelpDep := "kelp (>= " + PackageVersion(o.KelpVersion) + ")"
	if o.Format == "rpm" {
		kelpDep = "kelp >= " + PackageVersion(o.KelpVersion)
	}
	// No dependency on the kernel package: the kernel is in the package's
	// name, and a host installs the package of the kernel it runs
	// (kelp-patch-NAME-$(uname -r)). Depending on linux-image-<release>
	// would make apt or dnf install that kernel on a host running another
	// one; the patch loads on its own kernel only.
	depends := []string{kelpDep}
	shipped := filepath.Join("/usr/lib/kelp/patches", rel, m.Name+".ko")

	work, err := os.MkdirTemp("", "kelp-package-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	scripts, err := writeScripts(work, patchScripts(o.Format, kelp, rel, m.Name, shipped))
	if err != nil {
		return nil, err
	}
	fi := &files.ContentFileInfo{Mode: 0o644, MTime: mtime, Owner: "root", Group: "root"}
	contents := files.Contents{{Source: o.Module, Destination: shipped, FileInfo: fi}}
	if o.Format == "deb" {
		docs, err := debianDocs(work, o.Name, o.Version+"-"+o.Release, o.Maintainer, "Live patch "+m.Name+" for Linux "+rel+".", mtime, fi)
		if err != nil {
			return nil, err
		}
		contents = append(contents, docs...)
	}
	info := &nfpm.Info{
		Name:          o.Name,
		Arch:          "amd64",
		Platform:      "linux",
		Version:       o.Version,
		VersionSchema: "none",
		Release:       o.Release,
		Section:       "kernel",
		Priority:      "optional",
		Maintainer:    o.Maintainer,
		Description:   o.Description,
		License:       "GPL-2.0-only",
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			Depends:  depends,
			Contents: contents,
			Scripts:  scripts,
			RPM:      nfpm.RPM{BuildHost: "kelp", Summary: o.Description},
		},
	}
	if o.Format == "rpm" {
		info.Arch = "x86_64"
	}
	p, err := write(info, o.Format, dir)
	if err != nil {
		return nil, err
	}
	p.Module, p.Kernel = m.Name, rel
	return p, nil
}

// patchScripts returns the maintainer scripts of a patch package.
// dpkg calls postinst with "configure" and prerm with "remove" or
// "upgrade"; rpm calls %post with the number of installed instances and
// %preun with 0 on erase. A reinstall or upgrade replaces the installed
// module but keeps a quarantine: only the admin lifts it (kelp
// unquarantine), and a quarantined patch is not loaded.
func patchScripts(format, kelp, rel, name, shipped string) map[string]string {
	load := fmt.Sprintf(`%[1]s install --force --keep-quarantine -k %[2]s %[4]s
if [ "$(uname -r)" = %[2]q ] && [ -d /sys/kernel/livepatch ]; then
	%[1]s load --skip-quarantined %[3]s
fi
`, kelp, rel, name, shipped)
	unload := fmt.Sprintf(`if [ "$(uname -r)" = %[2]q ] && [ -d /sys/kernel/livepatch/%[3]s ]; then
	%[1]s unload %[3]s
fi
if ! %[1]s uninstall -k %[2]s %[3]s; then
	echo "%[3]s was not installed in kelp's store for %[2]s" >&2
fi
`, kelp, rel, name)
	if format == "deb" {
		return map[string]string{
			"postinst": "#!/bin/sh\nset -e\ncase \"$1\" in configure) ;; *) exit 0 ;; esac\n" + load,
			"prerm":    "#!/bin/sh\nset -e\ncase \"$1\" in remove|purge) ;; *) exit 0 ;; esac\n" + unload,
		}
	}
	return map[string]string{
		"postinst": "#!/bin/sh\nset -e\n" + load,
		"prerm":    "#!/bin/sh\nset -e\n[ \"$1\" = 0 ] || exit 0\n" + unload,
	}
}

// wrap renders text as a Debian extended description: lines of at most
// 80 columns, each indented by one space.
func wrap(text string) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > 78 {
			lines = append(lines, " "+line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, " "+line), "\n")
}

// PackageVersion turns kelp's version into a package version: it starts
// with a digit ("dev" builds are 0.0.0~dev) and a git describe suffix sorts
// after its tag (1.2.0-3-gabc becomes 1.2.0+3+gabc).
func PackageVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if v == "" {
		v = "dev"
	}
	if v[0] < '0' || v[0] > '9' {
		v = "0.0.0~" + v
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '+', r == '~':
			return r
		}
		return '+'
	}, v)
}

func writeScripts(dir string, scripts map[string]string) (nfpm.Scripts, error) {
	var s nfpm.Scripts
	for name, body := range scripts {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return s, err
		}
		switch name {
		case "preinst":
			s.PreInstall = p
		case "postinst":
			s.PostInstall = p
		case "prerm":
			s.PreRemove = p
		case "postrm":
			s.PostRemove = p
		}
	}
	return s, nil
}

// write renders info as format into dir, atomically: a failed or
// interrupted build leaves no partial package behind.
func write(info *nfpm.Info, format, dir string) (*Package, error) {
	packager, err := nfpm.Get(format)
	if err != nil {
		return nil, err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return nil, fmt.Errorf("%s package: %w", format, err)
	}
	var buf bytes.Buffer
	if err := packager.Package(info, &buf); err != nil {
		return nil, fmt.Errorf("%s package: %w", format, err)
	}
	out := filepath.Join(dir, packager.ConventionalFileName(info))
	if err := writeFileAtomic(out, buf.Bytes()); err != nil {
		return nil, err
	}
	return &Package{Format: format, Name: info.Name, Version: info.Version, File: out, Depends: info.Depends}, nil
}
