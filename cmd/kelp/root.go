package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// globals are the flags every command shares.
type globals struct {
	json bool
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "kelp",
		Short: "Live kernel patching: build, apply, keep and ship livepatch modules",
		Long: `kelp turns a source patch into a Linux livepatch module, applies it to the
running kernel without a reboot, keeps it applied across reboots and ships it
as an ordinary package.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitWith(exitUsage, "%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(
		newVersionCmd(g),
		newCheckCmd(g),
		newLoadCmd(g),
		newUnloadCmd(g),
		newListCmd(g),
		newInfoCmd(g),
		newForceCmd(g),
		newInstallCmd(g),
		newUninstallCmd(g),
		newUnquarantineCmd(g),
		newStatusCmd(g),
		newSignCmd(g),
		newPackageCmd(g),
		newBuildCmd(g),
		newSymbolsCmd(g),
	)
	return root
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
