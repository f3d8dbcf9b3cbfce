package main

import (
	"os"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

// Shell completion: `kelp completion bash|zsh|fish` prints the script
// (kelp's package installs them); these functions complete patch names
// and kernel releases from the running system.

func addCompletions(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
}

// completeInstalled completes the names of the patches installed for the
// kernel of --kernel (default: the running one).
func completeInstalled(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return installedNames(cmd), cobra.ShellCompDirectiveNoFileComp
}

// completePatches completes installed and loaded patch names, and files.
func completePatches(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := installedNames(cmd)
	if ps, err := livepatch.Host.Patches(); err == nil {
		for _, p := range ps {
			names = append(names, p.Name)
		}
	}
	return dedup(names), cobra.ShellCompDirectiveDefault
}

func installedNames(cmd *cobra.Command) []string {
	rel := ""
	if f := cmd.Flags().Lookup("kernel"); f != nil {
		rel = f.Value.String()
	}
	if rel == "" {
		rel, _ = livepatch.Host.Release()
	}
	es, _, err := openStore().List(rel)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	return names
}

// completeReleases completes kernel releases: those with patches in the
// store and those installed in /lib/modules.
func completeReleases(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	rels, _ := openStore().Releases()
	if ents, err := os.ReadDir("/lib/modules"); err == nil {
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				rels = append(rels, e.Name())
			}
		}
	}
	return dedup(rels), cobra.ShellCompDirectiveNoFileComp
}

func dedup(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// completeLoaded completes the names of the loaded livepatch modules.
func completeLoaded(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	names, _ := livepatch.Host.UnloadOrder()
	return dedup(names), cobra.ShellCompDirectiveNoFileComp
}
