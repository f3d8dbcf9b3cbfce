package main

import (
	"context"
	"fmt"
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
	var noWait, all, boot, skipQuarantined bool
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
kernel (see kelp install). A quarantined patch is refused, or with
--skip-quarantined reported and left alone (as patch packages do). --all loads every patch installed for the running
kernel, in install order (from the newest cumulative patch on), skipping
quarantined patches and recording an "applying" mark around each load;
--boot is how kelp.service runs it: it honours kelp.enable=0 on the kernel
command line, reports readiness to systemd after the loads, and keeps the
marks for --settle before clearing them, so a boot that dies in that window
quarantines the patch.

` + exitCodesHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if all != (len(args) == 0) {
				return exitWith(exitUsage, "load: give module files or names, or --all (see kelp load --help)")
			}
			if boot && !all {
				return exitWith(exitUsage, "load: --boot goes with --all (see kelp load --help)")
			}
			return nil
		},
		ValidArgsFunction: completePatches,
		RunE: func(cmd *cobra.Command, args []string) error {
			action, err := tf.action()
			if err != nil {
				return err
			}
			if all {
				ctx, stop := interruptible()
				defer stop()
				pr := newProgress(g, tf.verbose)
				return loadAll(ctx, cmd, g, boot, settle, livepatch.LoadOptions{
					Timeout: tf.timeout, OnTimeout: action, Progress: pr.event,
				})
			}
			targets, err := parseLoadArgs(args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			rep := loadReport{Results: []*livepatch.LoadResult{}}
			var kept []loadTarget
			for _, t := range targets {
				p, q, err := installedPath(t.path)
				switch {
				case err != nil:
					return g.emit(cmd, rep, err)
				case q != nil && skipQuarantined:
					rep.Skipped = append(rep.Skipped, *q)
					if !g.json {
						fmt.Fprintf(out, "%s: quarantined since %s: %s; not loaded (kelp unquarantine %s lifts it)\n", q.Name, q.QuarantinedAt.Format(time.RFC3339), q.Reason, q.Name)
					}
					continue
				case q != nil:
					return g.emit(cmd, rep, exitWith(exitFailure, "load: %s is quarantined since %s: %s (kelp unquarantine %s lifts it)", q.Name, q.QuarantinedAt.Format(time.RFC3339), q.Reason, q.Name))
				case p != "":
					t.path = p
				}
				kept = append(kept, t)
			}
			targets = kept
			sys := livepatch.Host
			for _, t := range targets {
				if _, _, err := sys.Inspect(t.path, t.params); err != nil {
					return g.emit(cmd, rep, err)
				}
			}
			ctx, stop := interruptible()
			defer stop()
			pr := newProgress(g, tf.verbose)
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
					rep.Results = append(rep.Results, res)
					if !g.json && err == nil {
						fmt.Fprintln(out, loadSummary(res))
					}
				}
				if err != nil {
					loadErr = err
					break
				}
			}
			return g.emit(cmd, rep, loadErr)
		},
	}
	tf.add(c, "reverse the transition and remove the module")
	c.Flags().BoolVar(&noWait, "no-wait", false, "return once the transition has started, as insmod does")
	c.Flags().BoolVar(&all, "all", false, "load every patch installed for the running kernel")
	c.Flags().BoolVar(&skipQuarantined, "skip-quarantined", false, "report a quarantined patch NAME and leave it alone instead of refusing")
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

// loadReport is `kelp load --json`: what was loaded, and the quarantined
// patches left alone (--skip-quarantined).
type loadReport struct {
	Results []*livepatch.LoadResult `json:"results"`
	Skipped []quarantinedPatch      `json:"skipped_quarantined,omitempty"`
}

func tasksText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d tasks", n)
}
