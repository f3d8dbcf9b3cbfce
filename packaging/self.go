package packaging

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// ServiceUnit is kelp.service: early in boot, after local filesystems,
// load the running kernel's installed patches with the crash-loop guard.
// kelp reports readiness once the loads are done and stays up for the
// settle time before clearing its "applying" marks, so boot is not held up
// by the settle wait.
const ServiceUnit = `[Unit]
Description=Apply installed kelp live patches
Documentation=man:kelp(8)
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service
Before=sysinit.target shutdown.target
Conflicts=shutdown.target
ConditionKernelCommandLine=!kelp.enable=0
ConditionPathIsDirectory=/sys/kernel/livepatch

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/sbin/kelp load --all --boot
RemainAfterExit=yes
TimeoutStartSec=10min

[Install]
WantedBy=sysinit.target
`

// SelfOptions describe kelp's own package.
type SelfOptions struct {
	Format     string
	Binary     string // the kelp executable to ship as /usr/sbin/kelp
	Helper     string // kelp-package, shipped as HelperPath
	Version    string // kelp's version
	Maintainer string
	// Root, when set, is a directory whose files are shipped at the same
	// paths below / (man pages, shell completions).
	Root string
}

// HelperPath is where kelp's package installs kelp-package, the program
// behind `kelp package`.
const HelperPath = "/usr/libexec/kelp/kelp-package"

// Maintainer scripts of kelp's own package. dpkg: enable kelp.service on
// the first installation only and keep an admin's choice on upgrades and
// reinstalls (deb-systemd-helper records both); mask it on removal so a
// leftover unit file cannot start, and forget it on purge. rpm: apply the
// preset on the first installation, disable on erase. The service is not
// started at installation: it applies the store's patches at boot.
const (
	selfPostinstDeb = `#!/bin/sh
set -e
case "$1" in
configure|abort-upgrade|abort-deconfigure|abort-remove) ;;
*) exit 0 ;;
esac
if command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper unmask kelp.service >/dev/null || true
	# was-enabled is true for a unit deb-systemd-helper has never seen.
	if deb-systemd-helper --quiet was-enabled kelp.service; then
		deb-systemd-helper enable kelp.service >/dev/null || true
	else
		deb-systemd-helper update-state kelp.service >/dev/null || true
	fi
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
`
	selfPrermDeb = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
	deb-systemd-invoke stop kelp.service >/dev/null || true
fi
`
	selfPostrmDeb = `#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if command -v deb-systemd-helper >/dev/null 2>&1; then
	case "$1" in
	remove) deb-systemd-helper mask kelp.service >/dev/null || true ;;
	purge)
		deb-systemd-helper purge kelp.service >/dev/null || true
		deb-systemd-helper unmask kelp.service >/dev/null || true
		;;
	esac
fi
`
	selfPostRPM = `#!/bin/sh
if [ "$1" = 1 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload preset kelp.service >/dev/null 2>&1 || true
fi
`
	selfPreunRPM = `#!/bin/sh
if [ "$1" = 0 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload disable --now kelp.service >/dev/null 2>&1 || true
fi
`
)

// BuildSelf writes kelp's own package (binary, kelp-package, systemd unit,
// docs) into dir.
func BuildSelf(o SelfOptions, dir string) (*Package, error) {
	if err := checkFormat(o.Format); err != nil {
		return nil, err
	}
	st, err := os.Stat(o.Binary)
	if err != nil {
		return nil, err
	}
	mtime, err := Epoch(st.ModTime())
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "kelp-package-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	unit := filepath.Join(work, "kelp.service")
	if err := os.WriteFile(unit, []byte(ServiceUnit), 0o644); err != nil {
		return nil, err
	}
	scripts := map[string]string{"postinst": selfPostinstDeb, "prerm": selfPrermDeb, "postrm": selfPostrmDeb}
	if o.Format == "rpm" {
		scripts = map[string]string{"postinst": selfPostRPM, "prerm": selfPreunRPM}
	}
	sc, err := writeScripts(work, scripts)
	if err != nil {
		return nil, err
	}
	fi := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Mode: mode, MTime: mtime, Owner: "root", Group: "root"}
	}
	contents := files.Contents{
		{Source: o.Binary, Destination: "/usr/sbin/kelp", FileInfo: fi(0o755)},
		{Source: unit, Destination: "/lib/systemd/system/kelp.service", FileInfo: fi(0o644)},
		{Destination: "/var/lib/kelp", Type: files.TypeDir, FileInfo: fi(0o755)},
	}
	if o.Helper != "" {
		contents = append(contents, &files.Content{Source: o.Helper, Destination: HelperPath, FileInfo: fi(0o755)})
	}
	if o.Root != "" {
		err := filepath.WalkDir(o.Root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(o.Root, p)
			if err != nil {
				return err
			}
			dst := "/" + filepath.ToSlash(rel)
			if strings.HasPrefix(dst, "/usr/share/man/") && !strings.HasSuffix(dst, ".gz") {
				// Debian ships man pages gzipped.
				if p, err = gzipFile(p, work); err != nil {
					return err
				}
				dst += ".gz"
			}
			contents = append(contents, &files.Content{Source: p, Destination: dst, FileInfo: fi(0o644)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	o.Maintainer = maintainer(o.Maintainer)
	version := PackageVersion(o.Version)
	if o.Format == "deb" {
		docs, err := debianDocs(work, "kelp", version+"-1", o.Maintainer, "kelp "+version+".", mtime, fi(0o644))
		if err != nil {
			return nil, err
		}
		contents = append(contents, docs...)
		overrides := filepath.Join(work, "lintian-overrides")
		if err := os.WriteFile(overrides, []byte(SelfLintianOverrides), 0o644); err != nil {
			return nil, err
		}
		contents = append(contents, &files.Content{Source: overrides, Destination: "/usr/share/lintian/overrides/kelp", FileInfo: fi(0o644)})
	}
	info := &nfpm.Info{
		Name:          "kelp",
		Arch:          "amd64",
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    o.Maintainer,
		Description: `live kernel patching: build, apply, keep and ship livepatch modules
 kelp turns a source patch into a Linux livepatch module, applies it to the
 running kernel without a reboot, keeps it applied across reboots
 (kelp.service) and ships it to many machines as an ordinary package.`,
		License: "GPL-2.0-only",
		MTime:   mtime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  sc,
			RPM:      nfpm.RPM{BuildHost: "kelp", Summary: "Live kernel patching"},
		},
	}
	if o.Format == "rpm" {
		info.Arch = "x86_64"
	}
	return write(info, o.Format, dir)
}

// debianDocs writes what Debian policy asks of every binary package into
// work and returns it as contents: /usr/share/doc/<pkg>/copyright and a
// gzipped changelog.Debian.
func debianDocs(work, pkg, version, maintainer, entry string, date time.Time, fi *files.ContentFileInfo) (files.Contents, error) {
	dir := filepath.Join(work, "doc-"+pkg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	copyright := filepath.Join(dir, "copyright")
	if err := os.WriteFile(copyright, []byte(Copyright), 0o644); err != nil {
		return nil, err
	}
	text := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * %s\n\n -- %s  %s\n", pkg, version, entry, maintainer, date.UTC().Format(time.RFC1123Z))
	gz, err := Gzip([]byte(text))
	if err != nil {
		return nil, err
	}
	changelog := filepath.Join(dir, "changelog.Debian.gz")
	if err := os.WriteFile(changelog, gz, 0o644); err != nil {
		return nil, err
	}
	doc := "/usr/share/doc/" + pkg + "/"
	return files.Contents{
		{Source: copyright, Destination: doc + "copyright", FileInfo: fi},
		{Source: changelog, Destination: doc + "changelog.Debian.gz", FileInfo: fi},
	}, nil
}

// SelfLintianOverrides are the lintian tags kelp's package overrides, each
// with its reason (docs/cli.md lists them too).
const SelfLintianOverrides = `# kelp and kelp-package are static Go binaries on purpose: the program
# systemd runs at every boot needs no loader and no library. lintian exempts
# Go programs built from a Debian source package that build-depends on
# golang-go; a package written by kelp package has no source package.
kelp: statically-linked-binary [usr/sbin/kelp]
kelp: statically-linked-binary [usr/libexec/kelp/kelp-package]
`

// Copyright is /usr/share/doc/<package>/copyright of kelp's packages, in
// the machine-readable format of Debian policy.
const Copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kelp
Source: https://github.com/kelp-project/kelp

Files: *
Copyright: 2025-2026 the kelp authors
License: GPL-2
 This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License version 2 as published by
 the Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in /usr/share/common-licenses/GPL-2.
`

// Gzip compresses data at the best compression with no name and no time
// in the header, as Debian wants man pages and changelogs: the same input
// gives the same bytes.
func Gzip(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipFile writes a gzipped copy of path into dir and returns its name.
func gzipFile(path, dir string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	gz, err := Gzip(data)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.gz")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(gz); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
