package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Man pages: kelp(8) and one kelp-COMMAND(8) per command, written from the
// command tree so they say what --help says, with the sections a Debian
// man page has (ENVIRONMENT, FILES, EXIT STATUS, EXAMPLES).

const manEnvironment = `KELP_STORE_DIR
The patch store (default /var/lib/kelp).

XDG_CACHE_HOME
kelp build extracts and prepares kernel source trees in $XDG_CACHE_HOME/kelp/trees (default ~/.cache/kelp/trees).

SOURCE_DATE_EPOCH
kelp package writes this time into packages (default: the input file's modification time), so the same inputs give the same bytes.

NOTIFY_SOCKET
Set by systemd for kelp.service: kelp load --all --boot reports readiness on it.`

const manFiles = `/var/lib/kelp/RELEASE/
The patch store of kernel RELEASE: index.json, patches/, quarantine and applying marks.

/lib/systemd/system/kelp.service
Loads the installed patches early at every boot (kelp load --all --boot), unless kelp.enable=0 is on the kernel command line.

/usr/lib/kelp/patches/RELEASE/
Modules shipped by patch packages.

/usr/libexec/kelp/kelp-package
The program behind kelp package.

/sys/kernel/livepatch/
The kernel's livepatch core: the registered patches and their transitions.

/boot/config-RELEASE, /usr/src/linux-headers-RELEASE, /usr/src/linux-source-VERSION.tar.xz
What kelp build reads for kernel RELEASE by default.`

const manExitStatus = `0
Success (also: the patch was already loaded and enabled).

1
Refused by a pre-flight check or bad input, or failed; nothing was changed.

2
The kernel refused the module or the operation.

3
The transition timed out and was reverted: the system is as it was.

4
Incomplete: the system is neither as asked nor as before; the message says what is left.

64
Usage error: an unknown command or flag, or wrong arguments.

The reason for a failure is always the last line on stderr. Under --json, stdout holds exactly one JSON document, on failure with an error object (kind, exit_code, message).`

const manExamples = `kelp check
Can this machine live patch?

kelp build fix.patch
Build fix.ko for the running kernel.

kelp load fix.ko && kelp list
Apply it and show whose code runs.

kelp install fix.ko
Keep it applied across reboots.

kelp package fix.ko --format deb
Ship it as a Debian package.`

// writeManPages writes kelp.8 and kelp-COMMAND.8 for every visible command
// into dir, dated date.
func writeManPages(root *cobra.Command, dir string, date time.Time) error {
	pages := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			pages = append(pages, c)
		}
	}
	for _, c := range pages {
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		if err := os.WriteFile(filepath.Join(dir, name+".8"), manPage(c, date), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func manPage(c *cobra.Command, date time.Time) []byte {
	var b bytes.Buffer
	name := strings.ReplaceAll(c.CommandPath(), " ", "-")
	fmt.Fprintf(&b, ".TH %s 8 %q %q \"kelp manual\"\n", strings.ToUpper(name), date.UTC().Format("2006-01-02"), "kelp "+version)
	section := func(s string) { fmt.Fprintf(&b, ".SH %s\n", s) }
	section("NAME")
	fmt.Fprintf(&b, "%s \\- %s\n", roff(name), roff(c.Short))
	section("SYNOPSIS")
	if c.HasParent() {
		fmt.Fprintf(&b, ".B %s\n%s\n", roff(c.Parent().CommandPath()), roff(c.Use))
	} else {
		fmt.Fprintf(&b, ".B kelp\n.I COMMAND\n[\\fIOPTIONS\\fR]\n")
	}
	section("DESCRIPTION")
	long := c.Long
	if i := strings.Index(long, exitCodesHelp); i >= 0 {
		long = strings.TrimSpace(long[:i])
	}
	if long == "" {
		long = c.Short + "."
	}
	paragraphs(&b, long)
	if !c.HasParent() {
		b.WriteString(".PP\nCommands:\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(&b, ".TP\n.BR %s (8)\n%s\n", roff(strings.ReplaceAll(sub.CommandPath(), " ", "-")), roff(sub.Short))
			}
		}
	}
	if c.HasAvailableFlags() {
		section("OPTIONS")
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) { manFlag(&b, f) })
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) { manFlag(&b, f) })
	}
	section("EXIT STATUS")
	definitions(&b, manExitStatus)
	section("ENVIRONMENT")
	definitions(&b, manEnvironment)
	section("FILES")
	definitions(&b, manFiles)
	section("EXAMPLES")
	if c.Example != "" {
		fmt.Fprintf(&b, ".nf\n%s\n.fi\n", roff(c.Example))
	} else {
		definitions(&b, manExamples)
	}
	section("SEE ALSO")
	if c.HasParent() {
		b.WriteString(".BR kelp (8)\n")
	} else {
		b.WriteString(".BR systemd (1),\n.BR modinfo (8),\n.BR insmod (8)\n")
	}
	return b.Bytes()
}

func manFlag(b *bytes.Buffer, f *pflag.Flag) {
	if f.Hidden || f.Name == "help" {
		return
	}
	head := "\\fB\\-\\-" + roff(f.Name) + "\\fR"
	if f.Shorthand != "" {
		head = "\\fB\\-" + roff(f.Shorthand) + "\\fR, " + head
	}
	if f.Value.Type() != "bool" {
		head += " \\fI" + strings.ToUpper(f.Value.Type()) + "\\fR"
	}
	fmt.Fprintf(b, ".TP\n%s\n%s", head, roff(f.Usage))
	if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
		fmt.Fprintf(b, " (default %s)", roff(f.DefValue))
	}
	b.WriteByte('\n')
}

// paragraphs renders text: blank lines separate paragraphs, indented
// lines are kept as they are.
func paragraphs(b *bytes.Buffer, text string) {
	for _, p := range strings.Split(text, "\n\n") {
		if strings.HasPrefix(p, " ") || strings.Contains(p, "\n ") {
			fmt.Fprintf(b, ".PP\n.nf\n%s\n.fi\n", roff(p))
			continue
		}
		fmt.Fprintf(b, ".PP\n%s\n", roff(p))
	}
}

// definitions renders "term\ndefinition" blocks separated by blank lines;
// a block of one line is a paragraph.
func definitions(b *bytes.Buffer, text string) {
	for _, d := range strings.Split(text, "\n\n") {
		term, def, ok := strings.Cut(d, "\n")
		if !ok {
			fmt.Fprintf(b, ".PP\n%s\n", roff(d))
			continue
		}
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n", roff(term), roff(def))
	}
}

// roff escapes text for a man page: backslashes, and control characters
// at the start of a line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
