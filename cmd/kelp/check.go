package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

func newCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Tell whether this machine can be live patched, and if not, why",
		Long: `check reads the running system (kernel release, CONFIG_LIVEPATCH, reliable
stack traces, ftrace, module loading, lockdown, module signature enforcement,
taint, loaded patches) and reports each finding.

Exit status 0 when live patching is possible, 1 when it is not; the reason is
the last line of the output.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := livepatch.Host.Check()
			out := cmd.OutOrStdout()
			var err error
			if !r.LivepatchPossible {
				err = exitWith(exitFailure, "live patching is not possible on %s: %s", orUnknown(r.Kernel), r.Reason)
			}
			if g.json {
				return g.emit(cmd, r, err)
			}
			{
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
				for _, c := range r.Checks {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, status(c), c.Detail)
				}
				tw.Flush()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "live patching is possible on %s\n", r.Kernel)
			return nil
		},
	}
}

func status(c livepatch.CheckResult) string {
	switch {
	case c.OK:
		return "ok"
	case c.Blocking:
		return "FAIL"
	default:
		return "warn"
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "this kernel"
	}
	return s
}
