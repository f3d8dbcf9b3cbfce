package main

import (
	"fmt"
	"os"
	"os/signal"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/ktree"
	"github.com/spf13/cobra"
)

func newPrepareCmd(_ *globals) *cobra.Command {
	var opts ktree.Options
	var rootOf string
	var packagesOnly bool
	c := &cobra.Command{
		Use:   "prepare --kernel RELEASE",
		Short: "Prepare everything kelp build needs for a kernel, ahead of the first build",
		Long: `prepare does the slow first steps of kelp build for the target kernel
once, so the first build is as fast as the later ones: for a kernel of
another Debian release than the host's (e.g. 6.12.57+deb13-amd64 on a
Debian 12 host) it makes the Debian build root of that release
($XDG_CACHE_HOME/kelp/roots/<suite>: debootstrap, the compiler and kbuild
tools, and the kernel's image, headers and source packages of its exact
version); then it extracts and prepares the kernel's source tree.`,
		Annotations: map[string]string{textOnly: "it reports the steps it takes as text, ahead of kelp build"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Step = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if rootOf != "" {
				r, err := buildroot.Open(ctx, buildroot.Options{Suite: rootOf, Step: opts.Step})
				if err != nil {
					return exitWith(exitFailure, "prepare: %v", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), r.Dir)
				return nil
			}
			if opts.Release == "" {
				return exitWith(exitUsage, "prepare: --kernel RELEASE is required")
			}
			if packagesOnly {
				suite, ok := buildroot.SuiteOf(opts.Release)
				if !ok || suite == buildroot.HostSuite() {
					return exitWith(exitFailure, "prepare: %s is not a kernel of another Debian release than the host's; it has no build root", opts.Release)
				}
				r, err := buildroot.Open(ctx, buildroot.Options{Suite: suite, Step: opts.Step})
				if err != nil {
					return exitWith(exitFailure, "prepare: %v", err)
				}
				k, err := r.Kernel(ctx, opts.Release, opts.Step)
				if err != nil {
					return exitWith(exitFailure, "prepare: %v", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "prepared %s (Debian %s) in the build root %s\n", k.Release, k.Version, r.Dir)
				return nil
			}
			t, err := ktree.Open(ctx, opts)
			if err != nil {
				return exitWith(exitFailure, "prepare: %v", err)
			}
			where := "the host"
			if t.Exec != nil {
				where = "the build root " + t.Exec.Dir
			}
			fmt.Fprintf(cmd.OutOrStdout(), "prepared %s: tree %s, compiling in %s\n", t.Release, t.Dir, where)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&opts.Release, "kernel", "k", "", "target kernel release")
	f.StringVar(&rootOf, "root-of", "", "only make the build root of this Debian suite (e.g. trixie) and print its directory")
	f.BoolVar(&packagesOnly, "packages-only", false, "only install the kernel's packages into its build root (no source tree)")
	f.StringVar(&opts.Config, "config", "", "kernel config of the target (default /boot/config-<kernel>, in its build root if it has one)")
	f.StringVar(&opts.BuildRoot, "buildroot", "", `"host" to compile on this machine even for another Debian release's kernel`)
	f.BoolVar(&opts.SkipCompilerCheck, "skip-compiler-check", false, "prepare even when gcc is not the compiler that built the kernel")
	f.IntVarP(&opts.Jobs, "jobs", "j", 0, "parallel jobs (default: all cores)")
	return c
}
