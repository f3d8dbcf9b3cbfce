package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/packaging"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newPackageCmd(g *globals) *cobra.Command {
	var o packaging.PatchOptions
	var outDir string
	var self bool
	c := &cobra.Command{
		Use:   "package [--format deb|rpm] FILE.ko | --self",
		Short: "Wrap a patch module (or kelp itself) in a .deb or .rpm package",
		Long: `package writes a reproducible package for apt/dnf repositories:

  kelp package fix.ko --format deb
      kelp-patch-<module>-<kernel>_<version>-<release>_amd64.deb: ships the
      module, depends on the exact kernel package it targets and on kelp; its
      post-install script installs it into the store and loads it on the
      matching running kernel; removal unloads and uninstalls it.

  kelp package --self --format deb
      kelp itself: /usr/sbin/kelp, kelp.service (enabled on install), man
      pages.

File times and package dates come from SOURCE_DATE_EPOCH when set (else the
input file's modification time), so the same inputs give the same bytes.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if self && len(args) != 0 || !self && len(args) != 1 {
				return exitWith(exitUsage, "package: give one FILE.ko, or --self")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return exitWith(exitFailure, "package: %v", err)
			}
			var p *packaging.Package
			var err error
			if self {
				p, err = packageSelf(cmd.Root(), o, outDir)
			} else {
				o.Module = args[0]
				p, err = packaging.BuildPatch(o, outDir)
			}
			if err != nil {
				return exitWith(exitFailure, "package: %v", err)
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s %s, depends: %s)\n", p.File, p.Name, p.Version, strings.Join(p.Depends, ", "))
			return nil
		},
	}
	c.Flags().StringVar(&o.Format, "format", "deb", "package format: deb or rpm")
	c.Flags().StringVar(&o.Name, "name", "", "package name (default kelp-patch-<module>-<kernel release>)")
	c.Flags().StringVar(&o.Version, "version", "", "package version (default 1.0.0; kelp's own version with --self)")
	c.Flags().StringVar(&o.Release, "release", "", "package release (default 1)")
	c.Flags().StringVar(&o.Maintainer, "maintainer", "", "maintainer, e.g. 'Ops <ops@example.org>'")
	c.Flags().StringVar(&o.Description, "description", "", "package description")
	c.Flags().StringVarP(&outDir, "output-dir", "o", ".", "directory to write the package to")
	c.Flags().BoolVar(&self, "self", false, "package kelp itself (this binary, kelp.service, man pages)")
	return c
}

// packageSelf packages the running kelp binary with man pages generated
// from its own command tree.
func packageSelf(root *cobra.Command, o packaging.PatchOptions, outDir string) (*packaging.Package, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	manDir, err := os.MkdirTemp("", "kelp-man-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(manDir)
	st, err := os.Stat(exe)
	if err != nil {
		return nil, err
	}
	date, err := packaging.Epoch(st.ModTime())
	if err != nil {
		return nil, err
	}
	hdr := &doc.GenManHeader{Title: "KELP", Section: "8", Date: &date, Source: "kelp " + version, Manual: "kelp manual"}
	if err := doc.GenManTree(root, hdr, manDir); err != nil {
		return nil, fmt.Errorf("man pages: %w", err)
	}
	pages, _ := filepath.Glob(filepath.Join(manDir, "*.8"))
	docs := map[string]string{}
	for _, p := range pages {
		docs["/usr/share/man/man8/"+filepath.Base(p)] = p
	}
	v := o.Version
	if v == "" {
		v = version
	}
	return packaging.BuildSelf(packaging.SelfOptions{Format: o.Format, Binary: exe, Version: v, Maintainer: o.Maintainer, Docs: docs}, outDir)
}
