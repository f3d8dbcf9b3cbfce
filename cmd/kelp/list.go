package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

func newListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Show loaded livepatches and, per patched function, whose code runs",
		Long: `list shows the registered livepatches, newest first (enabled, transition and
its direction, objects and whether they are patched, functions with sympos),
livepatch modules left loaded after their patch was disabled or replaced,
and a function ownership table: for each patched function, the patch whose
version runs now. Linux 6.1 does not publish the order of its patch stack;
kelp derives it from module load order (a patch cannot be re-enabled, so
enable order is load order) and uses stack_order where the kernel has it
(6.14+). Functions in transition show which version switched tasks run and
which the others still run. Last come the patches installed in the store,
per kernel release, with quarantines and damaged files.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := livepatch.Host.List()
			if err != nil {
				return g.emit(cmd, nil, failWith(err, "list: loaded patches: %v", err))
			}
			out := cmd.OutOrStdout()
			inst, err := installedKernels()
			if err != nil {
				return g.emit(cmd, nil, failWith(err, "list: installed patches: %v", err))
			}
			patches := listedPatches(l)
			if g.json {
				return g.emit(cmd, listReport{Listing: l, Patches: patches, Installed: inst}, nil)
			}
			printListing(out, l, patches)
			printInstalled(out, inst)
			return nil
		},
	}
}

// listedPatch is a registered patch with what its module says it fixes.
type listedPatch struct {
	livepatch.PatchInfo
	kmod.Fixes
}

func listedPatches(l *livepatch.Listing) []listedPatch {
	out := make([]listedPatch, 0, len(l.Patches))
	for _, p := range l.Patches {
		f, _ := livepatch.Host.Fixes(p.Name)
		out = append(out, listedPatch{PatchInfo: p, Fixes: f})
	}
	return out
}

func printListing(out io.Writer, l *livepatch.Listing, patches []listedPatch) {
	if len(l.Patches) == 0 && len(l.Leftovers) == 0 {
		fmt.Fprintln(out, "no patches loaded")
		return
	}
	if len(l.Patches) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATCH\tSTATE\tFIXES\tOBJECTS")
		for _, p := range patches {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, patchState(p.Patch), orDash(strings.Join(p.CVEs, ",")), objectsText(p.Objects))
		}
		tw.Flush()
		for _, p := range patches {
			if p.Description != "" {
				fmt.Fprintf(out, "%s: %s\n", p.Name, p.Summary())
			}
		}
	}
	for _, m := range l.Leftovers {
		fmt.Fprintf(out, "%s: module loaded, its patch disabled or replaced (kelp unload %s removes it)\n", m.Name, m.Name)
	}
	if t := l.Transition; t != nil {
		fmt.Fprintf(out, "\ntransition: %s %s, %d/%d tasks switched\n", t.Patch, t.Target.Verb(), t.Switched, t.Total)
	}
	if len(l.Functions) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FUNCTION\tOBJECT\tRUNS\tSTACK (newest first)")
		for _, f := range l.Functions {
			fmt.Fprintf(tw, "%s,%d\t%s\t%s\t%s\n", f.Function, f.Sympos, f.Object, ownerText(f), strings.Join(f.Stack, ", "))
		}
		tw.Flush()
	}
}

func patchState(p livepatch.Patch) string {
	switch {
	case p.Transition:
		return p.Target().Verb()
	case p.Enabled:
		return "enabled"
	}
	return "disabled"
}

func objectsText(objs []livepatch.Object) string {
	var parts []string
	for _, o := range objs {
		st := "patched"
		if !o.Patched {
			st = "not loaded"
		}
		var fns []string
		for _, f := range o.Funcs {
			fns = append(fns, fmt.Sprintf("%s,%d", f.Name, f.Sympos))
		}
		part := fmt.Sprintf("%s (%s)", o.Name, st)
		if len(fns) > 0 {
			part += ": " + strings.Join(fns, " ")
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

func ownerText(f livepatch.Ownership) string {
	name := func(s string) string {
		if s == "" {
			return "original"
		}
		return s
	}
	switch f.State {
	case livepatch.FuncNotLoaded:
		return "- (object not loaded)"
	case livepatch.FuncTransition:
		return fmt.Sprintf("%s for switched tasks, %s for the others", name(f.Owner), name(f.Previous))
	}
	return name(f.Owner)
}
