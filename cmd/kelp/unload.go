package main

import (
	"fmt"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

func newUnloadCmd(g *globals) *cobra.Command {
	var tf transitionFlags
	var all bool
	c := &cobra.Command{
		Use:   "unload NAME... | --all",
		Short: "Disable livepatches, watch the transition back and remove their modules",
		Long: `unload disables each named patch, watches the unpatching transition with the
same progress, blocker and timeout handling as load, waits for the livepatch
core to release the module and removes it. A patch still patching is
reversed. A livepatch module whose patch is already gone (disabled, or
replaced by an atomic-replace patch) is simply removed. NAME is the patch
(module) name; a .ko file name works too.

When the unpatching transition outlives --timeout, --on-timeout revert
(default) re-enables the patch, which reverses the transition: the patch stays
applied. --all unloads every livepatch module, newest first, and stops at the
first failure.

` + exitCodesHelp,
		ValidArgsFunction: completeLoaded,
		RunE: func(cmd *cobra.Command, args []string) error {
			action, err := tf.action()
			if err != nil {
				return err
			}
			sys := livepatch.Host
			names := args
			switch {
			case all && len(args) > 0:
				return exitWith(exitUsage, "unload: give patch names or --all, not both (see kelp unload --help)")
			case all:
				if names, err = sys.UnloadOrder(); err != nil {
					return g.emit(cmd, unloadReport{Results: []*livepatch.UnloadResult{}}, failWith(err, "unload: list loaded patches: %v", err))
				}
			case len(args) == 0:
				return exitWith(exitUsage, "unload: name the patches to unload, or give --all (see kelp unload --help)")
			}
			out := cmd.OutOrStdout()
			ctx, stop := interruptible()
			defer stop()
			pr := newProgress(g, tf.verbose)
			results := []*livepatch.UnloadResult{}
			var unloadErr error
			for _, n := range names {
				res, err := sys.Unload(ctx, n, livepatch.UnloadOptions{Timeout: tf.timeout, OnTimeout: action, Progress: pr.event})
				if res != nil && err == nil {
					results = append(results, res)
					if !g.json {
						fmt.Fprintln(out, unloadSummary(res))
					}
				}
				if err != nil {
					if res != nil {
						results = append(results, res)
					}
					unloadErr = err
					break
				}
			}
			if g.json {
				return g.emit(cmd, unloadReport{Results: results}, unloadErr)
			}
			if all && len(names) == 0 {
				fmt.Fprintln(out, "no livepatch modules loaded")
			}
			return asExit(unloadErr)
		},
	}
	tf.add(c, "re-enable the patch, reversing the transition")
	c.Flags().BoolVar(&all, "all", false, "unload every livepatch module, newest first")
	return c
}

// unloadReport is `kelp unload --json`.
type unloadReport struct {
	Results []*livepatch.UnloadResult `json:"results"`
}

func unloadSummary(r *livepatch.UnloadResult) string {
	if r.Status == livepatch.StatusModuleRemoved {
		return r.Patch + ": module removed (its patch was already disabled or replaced)"
	}
	return fmt.Sprintf("%s: unpatched and removed in %s (transition %s%s)", r.Patch, r.Elapsed, r.TransitionTime, tasksText(r.Tasks))
}
