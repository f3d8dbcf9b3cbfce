package main

import (
	"fmt"
	"strings"

	"github.com/kelp-project/kelp/build"
	"github.com/spf13/cobra"
)

// buildKernelsReport is `kelp build --json` for several kernels: one entry
// per kernel, in the order given, each with its result and its error.
type buildKernelsReport struct {
	Kernels []kernelBuild `json:"kernels"`
}

type kernelBuild struct {
	Kernel string        `json:"kernel"`
	Result *build.Result `json:"result"`
	Error  *errorReport  `json:"error"`
}

// runBuildKernels is kelp build for several kernels.
func runBuildKernels(cmd *cobra.Command, g *globals, opts build.Options, kernels []string, list string, dumps []string, verbose bool) error {
	for _, fl := range []struct{ name, v string }{{"--sourcedir", opts.Tree.SourceDir}, {"--config", opts.Tree.Config}, {"--headers", opts.Tree.Headers}, {"--modules", opts.ModulesDir}} {
		if fl.v != "" {
			return g.emit(cmd, nil, exitWith(exitUsage, "build: %s names one kernel's files; with several kernels each comes from its own packages (see kelp build --help)", fl.name))
		}
	}
	if list != "" {
		more, err := build.ReadKernelList(list)
		if err != nil {
			return g.emit(cmd, nil, exitWith(exitUsage, "build: %v (see kelp build --help)", err))
		}
		kernels = append(kernels, more...)
	}
	kernels, err := build.DistinctKernels(kernels)
	if err == nil && len(kernels) == 0 {
		err = fmt.Errorf("several --symbols need their kernels: give --kernel for each")
	}
	if err != nil {
		return g.emit(cmd, nil, exitWith(exitUsage, "build: %v (see kelp build --help)", err))
	}
	if dumps, err = build.DumpsFor(kernels, dumps); err != nil {
		return g.emit(cmd, nil, exitWith(exitUsage, "build: %v (see kelp build --help)", err))
	}
	if _, errs := build.PickSymbols(kernels, dumps); errs[""] != nil {
		return g.emit(cmd, nil, exitWith(exitUsage, "build: %v (see kelp build --help)", errs[""]))
	}
	p := newBuildProgress(g, verbose)
	opts.Progress = p.event
	ctx, stop := interruptible()
	defer stop()
	results := build.BuildKernels(ctx, opts, kernels, dumps)
	rep := buildKernelsReport{}
	built := 0
	for _, r := range results {
		kb := kernelBuild{Kernel: r.Kernel, Result: r.Result}
		if r.Err != nil {
			kb.Result = reportable(kb.Result)
			kerr := buildError(g, r.Err)
			kb.Error = newErrorReport(kerr)
			if !g.json {
				fmt.Fprintf(g.stderr, "kelp: %s: %v\n", r.Kernel, kerr)
			}
		} else {
			built++
			if !g.json {
				for _, w := range r.Result.Warnings {
					fmt.Fprintf(g.stderr, "warning: %s: %s\n", r.Kernel, w)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "built %s for %s (%s)\n", r.Result.Module, r.Kernel, strings.Join(r.Result.Functions, ", "))
				if len(r.Result.CVEs) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "fixes %s\n", strings.Join(r.Result.CVEs, ", "))
				}
			}
		}
		rep.Kernels = append(rep.Kernels, kb)
	}
	if failed := build.Failed(results); len(failed) > 0 {
		return g.emit(cmd, rep, exitWith(exitFailure, "build: built for %d of %d kernels; failed for %s", built, len(results), strings.Join(failed, ", ")))
	}
	return g.emit(cmd, rep, nil)
}
