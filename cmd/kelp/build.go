package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/ktree"
	"github.com/kelp-project/kelp/modsign"
	"github.com/kelp-project/kelp/refusal"
	"github.com/spf13/cobra"
)

func newBuildCmd(g *globals) *cobra.Command {
	var opts build.Options
	var verbose bool
	var kernels, dumps []string
	var kernelList string
	c := &cobra.Command{
		Use:   "build [flags] PATCH...",
		Short: "Build a livepatch module from source patches",
		Long: `build turns one or more source patches (unified diffs against the kernel
tree, applied with -p1 like kpatch-build's) into a livepatch module for the
target kernel: NAME.ko and NAME.json (what changed, per object, and the
time each stage took).

Only the objects the patch reaches are compiled, original and patched,
with the kernel's own kbuild command lines plus -ffunction-sections
-fdata-sections; no full kernel build. Compiled originals are kept in
$XDG_CACHE_HOME/kelp/objects, so a rebuild compiles only the patched
side. An object's third rebuild also makes a precompiled header of its
source's leading includes, kept for use only if the object compiled
after it is byte for byte the one compiled without it; later rebuilds
then compile after it (--no-precompiled-heads: never).

Defaults on Debian, for the target kernel (--kernel, default: running):
  source   the linux-source-<version> package of the kernel image's
           version, extracted once into $XDG_CACHE_HOME/kelp/trees
           (~/.cache/kelp/trees) and prepared with make olddefconfig
           modules_prepare; or --sourcedir DIR
  config   /boot/config-<kernel>, or --config
  headers  /usr/src/linux-headers-<kernel> (Module.symvers, linking)
  symbols  /proc/kallsyms when building on the target itself; elsewhere
           --symbols FILE: a dump taken on the target with
           "kelp symbols > FILE", or the target's vmlinux with symbols
  modules  /lib/modules/<kernel>, when the patch changes a module

What the patch fixes goes into the module's .modinfo (kelp.description,
one kelp.cve per CVE id) and shows in kelp info, list and status. The
description is --description, or what the patches' headers say, one after
another: the Subject: of a git format-patch mail without its [PATCH n/m]
tag, the message of git show output, or a quilt/DEP-3 Description:, and
the paragraphs before the diff, without trailers. The CVE ids are every
CVE-YYYY-NNNN the patches' headers name (Subject, body, Fixes:/Link:
lines) and each --cve. A plain diff has no header: nothing is recorded.

The kernel need not be installed where kelp builds: its headers package
(linux-headers-<kernel>, installed, or else fetched with apt-get with its
common headers and linux-kbuild into $XDG_CACHE_HOME/kelp/headers) gives
the source version and the config (its .config).

Several kernels (--kernel repeated, or --kernels FILE) build one module per
kernel, one kernel after the other, into OUTPUT/<kernel>/NAME.ko, each from
its own source tree, config, headers and --symbols dump (each dump written by
"kelp symbols" on its kernel names it; a dump of no target kernel, or without
that name, stops the build before it starts). A kernel that fails is
reported and the others are built all the same; kelp exits 1 when any
failed.

Patches may include <kelp/patch.h> (callbacks, states, force-unsafe), or
kpatch's "kpatch-macros.h" and "kpatch-syscall.h".

Interrupting kelp build (SIGINT, SIGTERM) stops it and removes its work
directory; nothing is written.

` + exitCodesHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			startingHeap(64 << 20)
			opts.Patches = args
			for i, c := range opts.CVEs {
				id, err := build.ValidCVE(c)
				if err != nil {
					return exitWith(exitUsage, "build: --cve: %v (see kelp build --help)", err)
				}
				opts.CVEs[i] = id
			}
			if len(kernels) > 1 || kernelList != "" || len(dumps) > 1 {
				return runBuildKernels(cmd, g, opts, kernels, kernelList, dumps, verbose)
			}
			if len(kernels) == 1 {
				opts.Tree.Release = kernels[0]
			}
			if len(dumps) == 1 {
				if st, err := os.Stat(dumps[0]); err == nil && st.IsDir() {
					// A directory of dumps: the target kernel's, by name.
					rel := opts.Tree.Release
					if rel == "" {
						if rel, err = sys.Running.Release(); err != nil {
							return g.emit(cmd, buildReport{}, failWith(err, "build: the running kernel: %v", err))
						}
					}
					picked, err := build.DumpsFor([]string{rel}, dumps)
					if err == nil && len(picked) != 1 {
						err = fmt.Errorf("%w directory %s has %d dumps of kernel %s, want one", build.ErrDumpKernel, dumps[0], len(picked), rel)
					}
					if err != nil {
						return g.emit(cmd, buildReport{}, exitWith(exitUsage, "build: %v (see kelp build --help)", err))
					}
					dumps = picked
				}
				opts.Symbols = dumps[0]
			}
			// A signing key that cannot be used should stop the build
			// before any work, not after it.
			if (opts.SignKey == "") != (opts.SignCert == "") {
				return exitWith(exitUsage, "build: --sign-key and --sign-cert go together (see kelp build --help)")
			}
			if opts.SignKey != "" {
				if _, _, err := modsign.LoadKeyPair(opts.SignKey, opts.SignCert); err != nil {
					return g.emit(cmd, buildReport{}, failWith(err, "build: signing key: %v", err))
				}
			}
			p := newBuildProgress(g, verbose)
			opts.Progress = p.event
			ctx, stop := interruptible()
			defer stop()
			res, err := build.Build(ctx, opts)
			if err != nil {
				if res != nil && res.WorkDir != "" && !g.json {
					fmt.Fprintf(g.stderr, "work directory kept: %s\n", res.WorkDir)
				}
				res = reportable(res)
				return g.emit(cmd, buildReport{Result: res}, buildError(g, err))
			}
			if g.json {
				return g.emit(cmd, buildReport{Result: res}, nil)
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(g.stderr, "warning: "+w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s for %s (%s)\n", res.Module, res.Kernel, strings.Join(res.Functions, ", "))
			if len(res.CVEs) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "fixes %s\n", strings.Join(res.CVEs, ", "))
			}
			if res.WorkDir != "" {
				fmt.Fprintf(g.stderr, "work directory kept: %s\n", res.WorkDir)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&kernels, "kernel", "k", nil, "target kernel release (default: the running kernel); repeat it to build one module per kernel, in OUTPUT/<kernel>/")
	f.StringVar(&kernelList, "kernels", "", "file of target kernel releases, one per line (# comments), like repeated --kernel")
	f.StringVar(&opts.Tree.SourceDir, "sourcedir", "", "kernel source tree to use instead of the distribution's source package")
	f.StringVar(&opts.Tree.Config, "config", "", "kernel config of the target (default /boot/config-<kernel>)")
	f.StringVar(&opts.Tree.Headers, "headers", "", "kbuild directory of the target (default /usr/src/linux-headers-<kernel>)")
	f.StringVar(&opts.Tree.CacheDir, "cachedir", "", "where source trees are extracted (default $XDG_CACHE_HOME/kelp/trees)")
	f.StringVar(&opts.Tree.BuildRoot, "buildroot", "", `"host" to compile on this machine even for another Debian release's kernel (default: in that release's build root)`)
	f.BoolVar(&opts.Tree.SkipCompilerCheck, "skip-compiler-check", false, "build even when gcc is not the compiler that built the kernel")
	f.IntVarP(&opts.Tree.Jobs, "jobs", "j", 0, "parallel compiles (default: all cores)")
	f.BoolVar(&opts.Tree.NoHeads, "no-precompiled-heads", false, "compile every patched copy whole: make and use no precompiled head of its source (a head takes tens of megabytes in the object cache)")
	f.StringArrayVar(&dumps, "symbols", nil, "kallsyms dump (kelp symbols) or vmlinux with symbols of the target (default /proc/kallsyms on the target); with several kernels, one kelp symbols dump per kernel, matched by the kernel it names; a directory stands for the dumps in it")
	f.StringVar(&opts.ModulesDir, "modules", "", "the target's modules directory (default /lib/modules/<kernel>)")
	f.StringVarP(&opts.Name, "name", "n", "", "module name (default: from the first patch's file name)")
	f.StringVarP(&opts.OutDir, "output", "o", ".", "directory for NAME.ko and NAME.json")
	f.StringVar(&opts.Description, "description", "", "what the patch fixes (default: the patch header's subject and description)")
	f.StringArrayVar(&opts.CVEs, "cve", nil, "a CVE id the patch fixes, CVE-YYYY-NNNN (repeatable; added to those the patch header names)")
	f.BoolVar(&opts.NoReplace, "no-replace", false, "build a patch that stacks on loaded ones instead of replacing them (atomic replace is the default)")
	f.StringVar(&opts.SignKey, "sign-key", "", "private key to sign the module with (PEM), with --sign-cert")
	f.StringVar(&opts.SignCert, "sign-cert", "", "certificate of the signing key (PEM or DER)")
	f.BoolVar(&opts.KeepWork, "keep-work", false, "keep the work directory (objects, diffs, generated module source)")
	f.BoolVarP(&verbose, "verbose", "v", false, "show every step inside the stages")
	return c
}

// buildReport is `kelp build --json`: the build's report (also NAME.json),
// null when the build stopped before it had one.
type buildReport struct {
	Result *build.Result `json:"result"`
}

// reportable is a failed build's result, or nil when the build stopped
// before it had anything to report.
func reportable(res *build.Result) *build.Result {
	if res != nil && res.Name == "" && len(res.Units) == 0 {
		return nil
	}
	return res
}

// buildError prints what a failed build found (each refusal on its own
// line) and turns the error into an exit whose cause keeps the details
// for the JSON error object.
func buildError(g *globals, err error) error {
	var re *refusal.Error
	var ce *ktree.CompileError
	switch {
	case errors.As(err, &re) && len(re.Reasons) == 1:
		return failWith(err, "build: refused: %s", re.Reasons[0])
	case errors.As(err, &re):
		if !g.json {
			for _, r := range re.Reasons {
				fmt.Fprintln(g.stderr, "refused: "+r.String())
			}
		}
		return failWith(err, "build: patch refused (%d reasons above)", len(re.Reasons))
	case errors.As(err, &ce):
		// All the compiler said, then its first error on the last line.
		if !g.json {
			fmt.Fprintln(g.stderr, strings.TrimRight(ce.Output, "\n"))
		}
		return failWith(err, "build: %v", err)
	case errors.Is(err, context.Canceled):
		return failWith(err, "build: interrupted; no output written")
	}
	return failWith(err, "build: %v", err)
}

// buildProgress prints one line per finished stage with its duration
// (and the steps inside with -v); nothing under --json.
type buildProgress struct {
	w              io.Writer
	quiet, verbose bool
}

func newBuildProgress(g *globals, verbose bool) *buildProgress {
	return &buildProgress{w: g.stderr, quiet: g.json, verbose: verbose}
}

func (p *buildProgress) event(e build.Event) {
	if p.quiet {
		return
	}
	switch {
	case e.Done:
		fmt.Fprintf(p.w, "%-8s %6s  %s\n", e.Stage, fmtDur(e.Elapsed), e.Message)
	case p.verbose || e.Stage == "tree" && strings.HasPrefix(e.Message, "extracting") || strings.HasPrefix(e.Message, "preparing"):
		fmt.Fprintf(p.w, "%-8s         %s\n", e.Stage, e.Message)
	}
}
