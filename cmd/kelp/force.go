package main

import (
	"fmt"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

func newForceCmd(g *globals) *cobra.Command {
	var yes, verbose bool
	c := &cobra.Command{
		Use:   "force NAME --yes",
		Short: "Complete a stuck transition by force (breaks the consistency guarantee)",
		Long: `force completes the transition of patch NAME at once by writing its force
attribute: every task that has not switched yet is switched without its stack
being checked.

` + livepatch.ForceWarning + `

Prefer waiting, or reversing the transition with kelp unload NAME. force acts
only with --yes.

` + exitCodesHelp,
		ValidArgsFunction: completeLoaded,
		Args:              cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := livepatch.PatchName(args[0])
			if !yes {
				return exitWith(exitFailure, "%s: not forced: %s Run kelp force %s --yes to force anyway", name, livepatch.ForceWarning, name)
			}
			pr := newProgress(g, verbose)
			ctx, stop := interruptible()
			defer stop()
			res, err := livepatch.Host.Force(ctx, name, livepatch.ForceOptions{Progress: pr.event})
			out := cmd.OutOrStdout()
			if g.json {
				return g.emit(cmd, forceReport{Result: res}, err)
			}
			if err == nil {
				fmt.Fprintf(out, "%s: %s transition completed by force (%s switched without a stack check); reboot when convenient\n", res.Patch, res.Target.Verb(), plural(len(res.Blockers), "task"))
			}
			return asExit(err)
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "agree to force the transition")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the kernel log lines about the patch")
	return c
}

// forceReport is `kelp force --json`.
type forceReport struct {
	Result *livepatch.ForceResult `json:"result"`
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
