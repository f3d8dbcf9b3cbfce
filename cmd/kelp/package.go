package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// helperPath is where kelp's package installs kelp-package, the program
// that writes packages: the packaging library does not ride along in the
// kelp binary systemd runs at every boot.
const helperPath = "/usr/libexec/kelp/kelp-package"

// packageReport is `kelp package --json`: what kelp-package wrote.
type packageReport struct {
	Format  string   `json:"format"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
	File    string   `json:"file"`
	Module  string   `json:"module,omitempty"`
	Kernel  string   `json:"kernel,omitempty"`
	Depends []string `json:"depends"`
}

func newPackageCmd(g *globals) *cobra.Command {
	var format, name, pkgVersion, release, maintainer, description, outDir string
	var self bool
	c := &cobra.Command{
		Use:   "package [--format deb|rpm] FILE.ko... | --self",
		Short: "Wrap a patch module (or kelp itself) in a .deb or .rpm package",
		Long: `package writes a reproducible package for apt/dnf repositories:

  kelp package fix.ko --format deb
      kelp-patch-<module>-<kernel>_<version>-<release>_amd64.deb: ships the
      module and depends on this version of kelp or newer, never on the
      kernel's package (a host installs the package named after the kernel
      it runs); its post-install script installs it into the store and
      loads it on the matching running kernel (a reinstall keeps a
      quarantine); removal unloads and uninstalls it.

  kelp package out/*/fix.ko
      one package per module, e.g. the modules kelp build wrote for
      several kernels.

  kelp package --self --format deb
      kelp itself: /usr/sbin/kelp, kelp-package, kelp.service (enabled on
      the first installation only: an admin's disable survives upgrades),
      man pages, bash/zsh/fish completions.

File times and package dates come from SOURCE_DATE_EPOCH when set (else the
input file's modification time), so the same inputs give the same bytes.
The packages are written by kelp-package (next to kelp, or ` + helperPath + `).

` + exitCodesHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if self && len(args) != 0 || !self && len(args) == 0 {
				return exitWith(exitUsage, "package: give FILE.ko (one or more), or --self (see kelp package --help)")
			}
			if len(args) > 1 && name != "" {
				return exitWith(exitUsage, "package: --name names one package; give it with one FILE.ko (see kelp package --help)")
			}
			if format != "deb" && format != "rpm" {
				return exitWith(exitUsage, "package: --format %q: deb or rpm (see kelp package --help)", format)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			helper, err := findHelper()
			if err != nil {
				return g.emit(cmd, nil, err)
			}
			ctx, stop := interruptible()
			defer stop()
			hargs := []string{"--format", format, "--output-dir", outDir, "--kelp-version", version}
			for _, o := range []struct{ flag, v string }{{"--version", pkgVersion}, {"--maintainer", maintainer}} {
				if o.v != "" {
					hargs = append(hargs, o.flag, o.v)
				}
			}
			if self {
				exe, err := os.Executable()
				if err != nil {
					return g.emit(cmd, nil, failWith(err, "package: %v", err))
				}
				root, err := os.MkdirTemp("", "kelp-package-root-")
				if err != nil {
					return g.emit(cmd, nil, failWith(err, "package: %v", err))
				}
				defer os.RemoveAll(root)
				if err := selfFiles(cmd.Root(), exe, root); err != nil {
					return g.emit(cmd, nil, failWith(err, "package: %v", err))
				}
				hargs = append([]string{"self", "--binary", exe, "--root", root}, hargs...)
			} else {
				for _, o := range []struct{ flag, v string }{{"--name", name}, {"--release", release}, {"--description", description}} {
					if o.v != "" {
						hargs = append(hargs, o.flag, o.v)
					}
				}
				hargs = append([]string{"patch"}, hargs...)
			}
			if self {
				p, err := runPackageHelper(ctx, helper, hargs, outDir)
				if err != nil {
					return g.emit(cmd, nil, err)
				}
				return emitPackage(cmd, g, p)
			}
			if len(args) == 1 {
				p, err := runPackageHelper(ctx, helper, append(hargs, args[0]), outDir)
				if err != nil {
					return g.emit(cmd, nil, err)
				}
				return emitPackage(cmd, g, p)
			}
			// Several modules: one package each; on a failure the packages
			// already written are removed, so the set is whole or absent.
			var rep packagesReport
			for _, ko := range args {
				p, err := runPackageHelper(ctx, helper, append(hargs, ko), outDir)
				if err != nil {
					for _, done := range rep.Packages {
						os.Remove(done.File)
					}
					return g.emit(cmd, nil, failWith(err, "%v (%s; no package written)", err, ko))
				}
				rep.Packages = append(rep.Packages, p)
			}
			if g.json {
				return g.emit(cmd, rep, nil)
			}
			for _, p := range rep.Packages {
				printPackage(cmd, p)
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "deb", "package format: deb or rpm")
	c.Flags().StringVar(&name, "name", "", "package name (default kelp-patch-<module>-<kernel release>)")
	c.Flags().StringVar(&pkgVersion, "version", "", "package version (default 1.0.0; kelp's own version with --self)")
	c.Flags().StringVar(&release, "release", "", "package release (default 1)")
	c.Flags().StringVar(&maintainer, "maintainer", "", "maintainer, e.g. 'Ops <ops@example.org>'")
	c.Flags().StringVar(&description, "description", "", "package description")
	c.Flags().StringVarP(&outDir, "output-dir", "o", ".", "directory to write the package to")
	c.Flags().BoolVar(&self, "self", false, "package kelp itself (this binary, kelp.service, man pages, completions)")
	return c
}

// hiddenTemps returns the temporary files of atomic writes in dir.
func hiddenTemps(dir string) map[string]bool {
	ps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	out := map[string]bool{}
	for _, p := range ps {
		out[p] = true
	}
	return out
}

// findHelper finds kelp-package: next to kelp (a build tree, bin/), where
// kelp's package installs it, or on PATH.
func findHelper() (string, error) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "kelp-package")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		tried = append(tried, p)
	}
	if _, err := os.Stat(helperPath); err == nil {
		return helperPath, nil
	}
	tried = append(tried, helperPath)
	if p, err := exec.LookPath("kelp-package"); err == nil {
		return p, nil
	}
	tried = append(tried, "PATH")
	return "", failWith(errors.New("kelp-package not found"), "package: kelp-package not found (looked in %s): install kelp's package, or build it with make build", strings.Join(tried, ", "))
}

// selfFiles writes the files kelp's package ships besides the binaries
// below root, at their installed paths: man pages and shell completions.
func selfFiles(root *cobra.Command, exe, dir string) error {
	st, err := os.Stat(exe)
	if err != nil {
		return err
	}
	date := st.ModTime()
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
		}
		date = time.Unix(n, 0)
	}
	man := filepath.Join(dir, "usr/share/man/man8")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	if err := writeManPages(root, man, date); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return writeCompletions(root, dir)
}

// writeCompletions writes the bash, zsh and fish completion scripts below
// dir where Debian's shells look for them.
func writeCompletions(root *cobra.Command, dir string) error {
	for _, s := range []struct {
		path string
		gen  func(*bytes.Buffer) error
	}{
		{"usr/share/bash-completion/completions/kelp", func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{"usr/share/zsh/vendor-completions/_kelp", func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{"usr/share/fish/vendor_completions.d/kelp.fish", func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
	} {
		var b bytes.Buffer
		if err := s.gen(&b); err != nil {
			return fmt.Errorf("completion %s: %w", s.path, err)
		}
		p := filepath.Join(dir, s.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// packagesReport is `kelp package --json` for several modules.
type packagesReport struct {
	Packages []packageReport `json:"packages"`
}

func emitPackage(cmd *cobra.Command, g *globals, p packageReport) error {
	if g.json {
		return g.emit(cmd, p, nil)
	}
	printPackage(cmd, p)
	return nil
}

func printPackage(cmd *cobra.Command, p packageReport) {
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s %s, depends: %s)\n", p.File, p.Name, p.Version, strings.Join(p.Depends, ", "))
}

// runPackageHelper runs kelp-package with hargs and reads its report.
func runPackageHelper(ctx context.Context, helper string, hargs []string, outDir string) (packageReport, error) {
	var p packageReport
	// kelp-package's temporary files go into a directory kelp
	// removes whatever happens to the helper; an interrupted
	// helper's partial package (a hidden .tmp in the output
	// directory) is removed too.
	tmp, err := os.MkdirTemp("", "kelp-package-")
	if err != nil {
		return p, failWith(err, "package: %v", err)
	}
	defer os.RemoveAll(tmp)
	before := hiddenTemps(outDir)
	var stdout, stderr bytes.Buffer
	h := exec.CommandContext(ctx, helper, hargs...)
	h.Stdout, h.Stderr = &stdout, &stderr
	h.Env = append(os.Environ(), "TMPDIR="+tmp)
	if err := h.Run(); err != nil {
		if ctx.Err() != nil {
			for tmpf := range hiddenTemps(outDir) {
				if !before[tmpf] {
					os.Remove(tmpf)
				}
			}
			return p, failWith(ctx.Err(), "package: interrupted; no package written")
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		msg = strings.TrimPrefix(msg, "kelp-package: ")
		if msg == "" {
			msg = err.Error()
		}
		return p, failWith(err, "package: %s", msg)
	}
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		return p, failWith(err, "package: unreadable answer from %s: %v", helper, err)
	}
	return p, nil
}
