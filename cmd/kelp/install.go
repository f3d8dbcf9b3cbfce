package main

import (
	"fmt"

	"github.com/kelp-project/kelp/store"
	"github.com/spf13/cobra"
)

func newInstallCmd(g *globals) *cobra.Command {
	var kver string
	var opts store.InstallOptions
	c := &cobra.Command{
		Use:   "install [-k KVER] FILE.ko",
		Short: "Install a patch module so it is loaded at every boot of its kernel",
		Long: `install copies a livepatch module into the patch store
($KELP_STORE_DIR, default /var/lib/kelp/<kernel release>/) after checking
that it is a livepatch module built for that kernel. The copy is atomic.
kelp.service loads installed patches at boot, in install order.

An installed patch of the same name is refused unless --force is given;
--force also lifts a quarantine, unless --keep-quarantine is given (a patch
package's reinstall or upgrade keeps it: only the admin lifts it).

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.KeepQuarantine && !opts.Force {
				return exitWith(exitUsage, "install: --keep-quarantine goes with --force (see kelp install --help)")
			}
			rel, err := kernelOrRunning(kver)
			if err != nil {
				return g.emit(cmd, nil, err)
			}
			st := openStore()
			e, err := st.Install(rel, args[0], opts)
			if err != nil {
				return g.emit(cmd, nil, failWith(err, "install: %v", err))
			}
			p := installedView(st, rel, []store.Entry{e})[0]
			if g.json {
				return g.emit(cmd, installReport{Kernel: rel, Patch: p}, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s for %s (%s)\n", e.Name, rel, p.File)
			return nil
		},
	}
	addKernelFlag(c, &kver)
	c.Flags().BoolVar(&opts.Force, "force", false, "replace an installed patch of the same name and lift its quarantine")
	c.Flags().BoolVar(&opts.KeepQuarantine, "keep-quarantine", false, "with --force: keep the patch's quarantine")
	c.Flags().BoolVar(&opts.Replace, "replace", false, "record the patch as cumulative (atomic replace): earlier patches need not be loaded")
	return c
}

func newUninstallCmd(g *globals) *cobra.Command {
	var kver string
	c := &cobra.Command{
		Use:   "uninstall [-k KVER] NAME",
		Short: "Remove an installed patch from the store (it stays loaded until unloaded)",
		Long: `uninstall removes patch NAME from the store of its kernel (the running one,
or -k KVER), with its quarantine and applying mark. A loaded patch stays
loaded: kelp unload NAME removes it from the kernel.

` + exitCodesHelp,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstalled,
		RunE: func(cmd *cobra.Command, args []string) error {
			rel, err := kernelOrRunning(kver)
			if err != nil {
				return g.emit(cmd, nil, err)
			}
			if err := openStore().Uninstall(rel, args[0]); err != nil {
				return g.emit(cmd, nil, failWith(err, "uninstall: %v", err))
			}
			if g.json {
				return g.emit(cmd, nameReport{Kernel: rel, Name: args[0]}, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uninstalled %s for %s\n", args[0], rel)
			return nil
		},
	}
	addKernelFlag(c, &kver)
	return c
}

func newUnquarantineCmd(g *globals) *cobra.Command {
	var kver string
	c := &cobra.Command{
		Use:   "unquarantine [-k KVER] NAME",
		Short: "Let a quarantined patch be loaded at boot again",
		Long: `A patch is quarantined when a boot found its "applying" mark from an earlier
boot: that boot died while or shortly after applying it. unquarantine lifts
the quarantine; the next boot (or kelp load --all) loads the patch again.

` + exitCodesHelp,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstalled,
		RunE: func(cmd *cobra.Command, args []string) error {
			rel, err := kernelOrRunning(kver)
			if err != nil {
				return g.emit(cmd, nil, err)
			}
			if err := openStore().Unquarantine(rel, args[0]); err != nil {
				return g.emit(cmd, nil, failWith(err, "unquarantine: %v", err))
			}
			if g.json {
				return g.emit(cmd, nameReport{Kernel: rel, Name: args[0]}, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is no longer quarantined for %s\n", args[0], rel)
			return nil
		},
	}
	addKernelFlag(c, &kver)
	return c
}

// installReport is `kelp install --json`.
type installReport struct {
	Kernel string         `json:"kernel"`
	Patch  installedPatch `json:"patch"`
}

// nameReport is `kelp uninstall --json` and `kelp unquarantine --json`:
// the patch the command acted on.
type nameReport struct {
	Kernel string `json:"kernel"`
	Name   string `json:"name"`
}
