// Package packaging turns livepatch modules, and kelp itself, into .deb and
// .rpm packages with nfpm, so patches travel through the apt/dnf
// repositories and configuration management an admin already runs.
//
// A patch package ships its module under /usr/lib/kelp/patches/<release>/;
// its post-install script installs it into the patch store and loads it
// when the running kernel is the one it targets; removal unloads it (if
// loaded) and uninstalls it. It depends on the exact kernel package it
// targets and on kelp. Output is reproducible: file times and package dates
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
	// KelpBinary is where the scripts find kelp (default /usr/sbin/kelp).
	KelpBinary string
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

// DefaultMaintainer is used when no maintainer is given.
const DefaultMaintainer = "kelp <root@localhost>"

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
	if o.Maintainer == "" {
		o.Maintainer = DefaultMaintainer
	}
	if o.Release == "" {
		o.Release = "1"
	}
	if o.Description == "" {
		o.Description = fmt.Sprintf("Live patch %s for Linux %s", m.Name, rel)
	}
	kelp := o.KelpBinary
	if kelp == "" {
		kelp = "/usr/sbin/kelp"
	}
	kernelDep := "linux-image-" + rel
	if o.Format == "rpm" {
		kernelDep = "kernel-uname-r = " + rel
	}
	depends := []string{kernelDep, "kelp"}
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
			Depends: depends,
			Contents: files.Contents{{
				Source:      o.Module,
				Destination: shipped,
				FileInfo:    &files.ContentFileInfo{Mode: 0o644, MTime: mtime, Owner: "root", Group: "root"},
			}},
			Scripts: scripts,
			RPM:     nfpm.RPM{BuildHost: "kelp", Summary: o.Description},
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
// %preun with 0 on erase.
func patchScripts(format, kelp, rel, name, shipped string) map[string]string {
	load := fmt.Sprintf(`set -e
%[1]s install --force -k %[2]s %[4]s
if [ "$(uname -r)" = %[2]q ] && [ -d /sys/kernel/livepatch ]; then
	%[1]s load %[3]s
fi
`, kelp, rel, name, shipped)
	unload := fmt.Sprintf(`if [ "$(uname -r)" = %[2]q ] && [ -d /sys/kernel/livepatch/%[3]s ]; then
	%[1]s unload %[3]s || exit 1
fi
%[1]s uninstall -k %[2]s %[3]s || true
`, kelp, rel, name)
	if format == "deb" {
		return map[string]string{
			"postinst": "#!/bin/sh\ncase \"$1\" in configure) ;; *) exit 0 ;; esac\n" + load,
			"prerm":    "#!/bin/sh\ncase \"$1\" in remove|purge) ;; *) exit 0 ;; esac\n" + unload,
		}
	}
	return map[string]string{
		"postinst": "#!/bin/sh\n" + load,
		"prerm":    "#!/bin/sh\n[ \"$1\" = 0 ] || exit 0\n" + unload,
	}
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
