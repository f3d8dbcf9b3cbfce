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
		RunE: func(cmd *cobra.Command, args []string) error {
			action, err := tf.action()
			if err != nil {
				return err
			}
			sys := livepatch.Host
			names := args
			switch {
			case all && len(args) > 0:
				return exitWith(exitUsage, "give patch names or --all, not both")
			case all:
				if names, err = sys.UnloadOrder(); err != nil {
					return exitWith(exitFailure, "list loaded patches: %v", err)
				}
			case len(args) == 0:
				return exitWith(exitUsage, "name the patches to unload, or give --all (see kelp list)")
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
				if err := writeOpJSON(out, results, unloadErr); err != nil {
					return err
				}
			} else if all && len(names) == 0 {
				fmt.Fprintln(out, "no livepatch modules loaded")
			}
			return asExit(unloadErr)
		},
	}
	tf.add(c, "re-enable the patch, reversing the transition")
	c.Flags().BoolVar(&all, "all", false, "unload every livepatch module, newest first")
	return c
}

func unloadSummary(r *livepatch.UnloadResult) string {
	if r.Status == livepatch.StatusModuleRemoved {
		return r.Patch + ": module removed (its patch was already disabled or replaced)"
	}
	return fmt.Sprintf("%s: unpatched and removed in %s (transition %s%s)", r.Patch, r.Elapsed, r.TransitionTime, tasksText(r.Tasks))
}
