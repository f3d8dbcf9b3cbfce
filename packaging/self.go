package packaging

import (
	"fmt"
	"os"
	"path/filepath"

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
	Binary     string // the kelp executable to ship
	Version    string
	Maintainer string
	// Docs are extra files: destination path → source path (man pages).
	Docs map[string]string
}

// BuildSelf writes kelp's own package (binary, systemd unit, docs) into dir.
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
	scripts, err := writeScripts(work, map[string]string{
		"postinst": `#!/bin/sh
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
if command -v systemctl >/dev/null 2>&1; then systemctl enable kelp.service >/dev/null 2>&1 || true; fi
`,
		"prerm": `#!/bin/sh
case "$1" in remove|purge|0) ;; *) exit 0 ;; esac
if command -v systemctl >/dev/null 2>&1; then systemctl disable kelp.service >/dev/null 2>&1 || true; fi
`,
	})
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
	for dst, src := range o.Docs {
		contents = append(contents, &files.Content{Source: src, Destination: dst, FileInfo: fi(0o644)})
	}
	if o.Maintainer == "" {
		o.Maintainer = DefaultMaintainer
	}
	version := o.Version
	if version == "" || version == "dev" {
		version = "0.0.0~dev"
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
		Description:   "Live kernel patching: build, apply, keep and ship livepatch modules",
		License:       "GPL-2.0-only",
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  scripts,
			RPM:      nfpm.RPM{BuildHost: "kelp", Summary: "Live kernel patching"},
		},
	}
	if o.Format == "rpm" {
		info.Arch = "x86_64"
	}
	return write(info, o.Format, dir)
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
