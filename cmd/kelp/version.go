package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set at link time
// (-ldflags "-X main.version=1.2.3 -X main.commit=<git hash>").
var (
	version = "dev"
	commit  = ""
)

type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Modified: built from a work tree with uncommitted changes.
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if v.Commit != "" || !ok {
		if v.Commit == "" {
			v.Commit = "unknown"
		}
		return v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kelp's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			if g.json {
				return g.emit(cmd, v, nil)
			}
			commit := v.Commit
			if v.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kelp %s\ncommit %s\n%s\n", v.Version, commit, v.Go)
			return nil
		},
	}
}
