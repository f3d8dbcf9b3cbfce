package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

// transitionFlags are the flags of every command that watches a
// transition.
type transitionFlags struct {
	timeout   time.Duration
	onTimeout string
	yes       bool
	verbose   bool
}

func (f *transitionFlags) add(c *cobra.Command, revertMeans string) {
	c.Flags().DurationVar(&f.timeout, "timeout", livepatch.DefaultTimeout, "how long the transition may take before --on-timeout applies")
	c.Flags().StringVar(&f.onTimeout, "on-timeout", "revert", "what to do when the transition times out: revert ("+revertMeans+"), wait (keep waiting), force (needs --yes)")
	c.Flags().BoolVar(&f.yes, "yes", false, "agree to force a stalled transition (with --on-timeout force)")
	c.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "show the kernel log lines about the patch")
}

func (f *transitionFlags) action() (livepatch.TimeoutAction, error) {
	a, err := livepatch.ParseTimeoutAction(f.onTimeout)
	if err != nil {
		return a, exitWith(exitUsage, "--on-timeout: %v", err)
	}
	if a == livepatch.Force && !f.yes {
		return a, exitWith(exitUsage, "--on-timeout force needs --yes: %s", livepatch.ForceWarning)
	}
	return a, nil
}

// interruptible returns a context canceled by SIGINT or SIGTERM: an
// interrupted load or unload reverts its transition instead of leaving it
// half-way.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

type loadTarget struct {
	path   string
	params []string
}

var paramRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*=`)

// parseLoadArgs splits "a.ko x=1 y=2 b.ko" into files and the module
// parameters following each, as insmod takes them.
func parseLoadArgs(args []string) ([]loadTarget, error) {
	var ts []loadTarget
	for _, a := range args {
		isParam := paramRE.MatchString(a) && !strings.HasSuffix(a, ".ko")
		if isParam {
			if _, err := os.Stat(a); err == nil {
				isParam = false
			}
		}
		if !isParam {
			ts = append(ts, loadTarget{path: a})
			continue
		}
		if len(ts) == 0 {
			return nil, exitWith(exitUsage, "module parameter %q comes before any module file", a)
		}
		ts[len(ts)-1].params = append(ts[len(ts)-1].params, a)
	}
	return ts, nil
}

func newLoadCmd(g *globals) *cobra.Command {
	var tf transitionFlags
	var noWait, all, boot bool
	var settle time.Duration
	c := &cobra.Command{
		Use:   "load FILE.ko|NAME [PARAM=VALUE...]... | --all",
		Short: "Apply livepatch modules to the running kernel and watch their transition",
		Long: `load checks each livepatch module before anything is loaded (a readable
kernel module, a livepatch, built for this kernel, known parameters, a
signature when the kernel demands one, live patching possible, no other
transition under way), loads it with finit_module and watches the patching
transition until every task runs the new code, reporting tasks switched.

When the transition outlives --timeout (default 60s; the kernel itself sends
fake signals to stuck tasks every ~15 s), the blocking tasks are printed with
their kernel stacks and --on-timeout applies: revert (default) reverses the
transition and removes the module, so the system ends as it was; wait keeps
waiting; force completes it at once (only with --yes; see kelp force).
Interrupting kelp (Ctrl-C) reverts as well.

Every file is checked before the first is loaded; loading stops at the first
failure, keeping the patches loaded before it.

A NAME instead of a file loads that patch from the store of the running
kernel (see kelp install). --all loads every patch installed for the running
kernel, in install order (from the newest cumulative patch on), skipping
quarantined patches and recording an "applying" mark around each load;
--boot is how kelp.service runs it: it honours kelp.enable=0 on the kernel
command line, reports readiness to systemd after the loads, and keeps the
marks for --settle before clearing them, so a boot that dies in that window
quarantines the patch.

` + exitCodesHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if all != (len(args) == 0) {
				return exitWith(exitUsage, "load: give module files or names, or --all")
			}
			if boot && !all {
				return exitWith(exitUsage, "load: --boot goes with --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			action, err := tf.action()
			if err != nil {
				return err
			}
			if all {
				ctx, stop := interruptible()
				defer stop()
				pr := newProgress(g, tf.verbose)
				return loadAll(ctx, cmd.OutOrStdout(), g.json, boot, settle, livepatch.LoadOptions{
					Timeout: tf.timeout, OnTimeout: action, Progress: pr.event,
				})
			}
			targets, err := parseLoadArgs(args)
			if err != nil {
				return err
			}
			for i := range targets {
				if p, ok := installedPath(targets[i].path); ok {
					targets[i].path = p
				}
			}
			out := cmd.OutOrStdout()
			sys := livepatch.Host
			for _, t := range targets {
				if _, _, err := sys.Inspect(t.path, t.params); err != nil {
					if g.json {
						writeOpJSON(out, []*livepatch.LoadResult{}, err)
					}
					return asExit(err)
				}
			}
			ctx, stop := interruptible()
			defer stop()
			pr := newProgress(g, tf.verbose)
			results := []*livepatch.LoadResult{}
			var loadErr error
			for _, t := range targets {
				res, err := sys.Load(ctx, t.path, livepatch.LoadOptions{
					Params:    t.params,
					Timeout:   tf.timeout,
					OnTimeout: action,
					NoWait:    noWait,
					Progress:  pr.event,
				})
				if res != nil {
					results = append(results, res)
					if !g.json && err == nil {
						fmt.Fprintln(out, loadSummary(res))
					}
				}
				if err != nil {
					loadErr = err
					break
				}
			}
			if g.json {
				if err := writeOpJSON(out, results, loadErr); err != nil {
					return err
				}
			}
			return asExit(loadErr)
		},
	}
	tf.add(c, "reverse the transition and remove the module")
	c.Flags().BoolVar(&noWait, "no-wait", false, "return once the transition has started, as insmod does")
	c.Flags().BoolVar(&all, "all", false, "load every patch installed for the running kernel")
	c.Flags().BoolVar(&boot, "boot", false, "with --all: run as kelp.service does at boot (crash-loop guard, systemd readiness)")
	c.Flags().DurationVar(&settle, "settle", 15*time.Second, "with --boot: how long the system must stay up after the loads before they count as safe")
	return c
}

func loadSummary(r *livepatch.LoadResult) string {
	switch r.Status {
	case livepatch.StatusAlready:
		return r.Patch + ": already loaded and enabled"
	case livepatch.StatusStarted:
		return fmt.Sprintf("%s: loaded in %s, patching transition under way (see kelp list)", r.Patch, r.LoadTime)
	case livepatch.StatusForced:
		return fmt.Sprintf("%s: patched by force after %s (reboot when convenient)", r.Patch, r.Elapsed)
	}
	return fmt.Sprintf("%s: patched in %s (finit_module %s, transition %s%s)", r.Patch, r.Elapsed, r.LoadTime, r.TransitionTime, tasksText(r.Tasks))
}

// opReport is the JSON shape of load, unload and force: what was done, and
// the error that stopped the command, if any.
type opReport struct {
	Results any          `json:"results"`
	Error   *errorReport `json:"error,omitempty"`
}

type errorReport struct {
	Kind     string           `json:"kind"`
	ExitCode int              `json:"exit_code"`
	Message  string           `json:"message"`
	Blockers []livepatch.Task `json:"blockers,omitempty"`
	Log      []string         `json:"kernel_log,omitempty"`
}

func writeOpJSON(w io.Writer, results any, err error) error {
	r := opReport{Results: results}
	if err != nil {
		code, kind := exitCode(err)
		r.Error = &errorReport{Kind: kind, ExitCode: code, Message: err.Error()}
		if te, ok := err.(*livepatch.TimeoutError); ok {
			r.Error.Blockers = te.Blockers
		}
		if ke, ok := err.(*livepatch.KernelError); ok {
			r.Error.Log = ke.Log
		}
	}
	return writeJSON(w, r)
}

func tasksText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d tasks", n)
}
