package main

import (
	"fmt"
	"io"
	"os"

	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

func newSymbolsCmd(_ *globals) *cobra.Command {
	return &cobra.Command{
		Annotations: map[string]string{textOnly: "the output is the kernel's symbol table as text, for kelp build --symbols"},
		Use:         "symbols > FILE",
		Short:       "Print the running kernel's symbol table, for kelp build --symbols elsewhere",
		Long: `symbols prints /proc/kallsyms of the running kernel. Run it on the target
(as root: without privilege the addresses read as zero, which kelp build
accepts since only the order counts, but the file is then less useful to
people) and give the file to kelp build --symbols on the build machine:

  target$ sudo kelp symbols > kallsyms-$(uname -r)
  build$  kelp build --kernel 6.1.0-56-amd64 --symbols kallsyms-6.1.0-56-amd64 fix.patch

The first line names the kernel release, its build id (from
/sys/kernel/notes) and its Debian version (from /proc/sys/kernel/version);
kelp build refuses a dump of another release, and builds from the headers
and source of the Debian version the dump names (fetching them when the
installed ones are of another version).

Build on a target with no livepatch module loaded, or after kelp unload
--all: kelp build reads vmlinux's symbols from the dump and the modules'
from /lib/modules. The output is the kallsyms text itself: --json is a usage
error.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			kern := livepatch.Host.Kernel()
			rel, err := kern.Release()
			if err != nil {
				return failWith(err, "symbols: %v", err)
			}
			h := ksym.DumpHeader{Release: rel}
			// The build id tells two builds of one release apart; a
			// kernel without the note still gets its release recorded.
			if notes, err := kern.Notes(); err == nil {
				h.BuildID = ksym.BuildIDFromNotes(notes)
			}
			// The Debian version tells kelp build which build of the
			// release's packages to build from.
			if v, err := kern.DebianVersion(); err == nil {
				h.Version = v
			}
			f, err := os.Open(kern.Path("proc", "kallsyms"))
			if err != nil {
				return failWith(err, "symbols: %v", err)
			}
			defer f.Close()
			if _, err := fmt.Fprintln(cmd.OutOrStdout(), h.String()); err != nil {
				return failWith(err, "symbols: %v", err)
			}
			if _, err := io.Copy(cmd.OutOrStdout(), f); err != nil {
				return failWith(err, "symbols: %v", err)
			}
			return nil
		},
	}
}
