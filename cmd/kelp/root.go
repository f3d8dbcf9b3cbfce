package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// schemaVersion is the version of kelp's JSON output (docs/cli.md). It
// changes when a field is renamed or removed or changes its meaning; new
// fields do not change it.
const schemaVersion = 1

// globals are the flags and output every command shares.
type globals struct {
	json bool
	// stdout is where results go; stderr is where progress, warnings and
	// the final reason go.
	stdout, stderr io.Writer
	// reported is set once the command's JSON document is written.
	reported bool
}

// run executes kelp with args and returns its exit status. Every error
// ends as one line on stderr (the last one), and under --json as the error
// object of the one JSON document on stdout.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	var cmd *cobra.Command
	var err error
	if c, _, ferr := root.Find(args); ferr == nil && jsonAsked(args) && c.Annotations[textOnly] != "" {
		cmd, err = c, exitWith(exitUsage, "%s", usageText(c, "--json: "+c.Annotations[textOnly]))
	} else {
		cmd, err = root.ExecuteC()
	}
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Errors that are not kelp's own come from parsing the command
		// line: unknown commands and flags, wrong argument counts.
		ee = &exitError{code: exitUsage, msg: usageText(cmd, err.Error())}
	} else if ee.code == exitUsage && !strings.HasSuffix(ee.msg, "--help)") {
		ee = &exitError{code: exitUsage, msg: usageText(cmd, ee.msg), cause: ee.cause}
	}
	if (g.json || jsonAsked(args)) && !g.reported {
		g.report(stdout, nil, ee)
	}
	if ee.msg != "" {
		fmt.Fprintln(stderr, "kelp: "+ee.msg)
	}
	return ee.code
}

// jsonAsked reports --json on a command line that failed before its flags
// were parsed.
func jsonAsked(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// usageText names the command a usage error is about and where its usage
// is described.
func usageText(c *cobra.Command, msg string) string {
	path := "kelp"
	if c != nil {
		path = c.CommandPath()
	}
	name := strings.TrimPrefix(path, "kelp ")
	if !strings.HasPrefix(msg, name+":") && !strings.HasPrefix(msg, "unknown command") {
		msg = name + ": " + msg
	}
	return fmt.Sprintf("%s (see %s --help)", msg, path)
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "kelp",
		Short: "Live kernel patching: build, apply, keep and ship livepatch modules",
		Long: `kelp turns a source patch into a Linux livepatch module, applies it to the
running kernel without a reboot, keeps it applied across reboots and ships it
as an ordinary package.

` + exitCodesHelp,
		Version:       currentVersion().Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exitWith(exitUsage, "name a command (see kelp --help)")
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetVersionTemplate(`{{printf "kelp %s\n" .Version}}`)
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print one machine-readable JSON document on stdout (docs/cli.md)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitWith(exitUsage, "%s", usageText(c, err.Error()))
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
		newPrepareCmd(g),
	)
	addCompletions(root)
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		guardCommand(c)
		if c.Name() == "help" {
			markTextOnly(c, "help is text (kelp COMMAND --help)")
		}
		if c.Name() == "completion" {
			markTextOnly(c, "the output is a shell script")
			c.RunE = func(cmd *cobra.Command, args []string) error {
				return exitWith(exitUsage, "completion: name a shell: bash, zsh, fish or powershell")
			}
		}
	}
	return root
}

// textOnly is the annotation of the commands whose output is text by
// nature (help, completion scripts, the symbol table): --json is a usage
// error for them, reported as one JSON document like any other.
const textOnly = "kelp-text-only"

func markTextOnly(c *cobra.Command, why string) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[textOnly] = why
	for _, sub := range c.Commands() {
		markTextOnly(sub, why)
	}
}

// guardCommand makes a command keep the contract whatever its RunE
// returns: argument errors are usage errors naming the command, and any
// other error is a failure (exit 1).
func guardCommand(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				return exitWith(exitUsage, "%s", usageText(cmd, err.Error()))
			}
			return err
		}
	}
	if runE := c.RunE; runE != nil {
		c.RunE = func(cmd *cobra.Command, a []string) error {
			err := runE(cmd, a)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				code, _ := exitCode(err)
				return &exitError{code: code, msg: err.Error()}
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		guardCommand(sub)
	}
}

// report writes the command's one JSON document: v's fields after
// schema_version, and the error object when err is not nil. v is nil or
// marshals to a JSON object.
func (g *globals) report(w io.Writer, v any, err error) error {
	g.reported = true
	var buf bytes.Buffer
	buf.WriteString(`{"schema_version":`)
	fmt.Fprint(&buf, schemaVersion)
	if v != nil {
		data, merr := marshal(v)
		if merr != nil {
			return merr
		}
		if len(data) < 2 || data[0] != '{' {
			return fmt.Errorf("JSON report is not an object: %s", data)
		}
		if body := bytes.TrimSpace(data[1 : len(data)-1]); len(body) > 0 {
			buf.WriteByte(',')
			buf.Write(body)
		}
	}
	if err != nil {
		data, merr := marshal(newErrorReport(err))
		if merr != nil {
			return merr
		}
		buf.WriteString(`,"error":`)
		buf.Write(data)
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, werr := w.Write(out.Bytes())
	return werr
}

// marshal is json.Marshal without HTML escaping: "kelp (>= 1.0)" stays
// readable.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// emit ends a command: under --json it writes the report (and err), and it
// returns err as the exit.
func (g *globals) emit(cmd *cobra.Command, v any, err error) error {
	if g.json {
		if werr := g.report(cmd.OutOrStdout(), v, err); werr != nil && err == nil {
			err = werr
		}
	}
	return asExit(err)
}
