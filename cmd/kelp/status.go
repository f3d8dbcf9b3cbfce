package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

// statusReport is `kelp status --json`.
type statusReport struct {
	Kernel string `json:"kernel"`
	// LivepatchSupported: the kernel has the livepatch core
	// (/sys/kernel/livepatch).
	LivepatchSupported bool              `json:"livepatch_supported"`
	Loaded             []livepatch.Patch `json:"loaded"`
	// Transition is the transition under way, null when there is none.
	Transition  *livepatch.TransitionInfo `json:"transition"`
	Installed   []installedPatch          `json:"installed"`
	Quarantined []quarantinedPatch        `json:"quarantined"`
	Applying    []applyingMark            `json:"applying"`
	Problems    []storeProblem            `json:"problems"`
	Tainted     uint64                    `json:"tainted"`
	TaintFlags  string                    `json:"taint_flags"`
	// OtherKernels counts the patches installed for other kernel releases.
	OtherKernels map[string]int `json:"other_kernels"`
}

func gatherStatus() (*statusReport, error) {
	rel, err := livepatch.Host.Release()
	if err != nil {
		return nil, err
	}
	r := &statusReport{Kernel: rel, Loaded: []livepatch.Patch{}, OtherKernels: map[string]int{}}
	if ps, err := livepatch.Host.Patches(); err == nil {
		r.LivepatchSupported = true
		r.Loaded = ps
		for _, p := range ps {
			if p.Transition {
				if l, err := livepatch.Host.List(); err == nil && l.Transition != nil {
					r.Transition = l.Transition
				} else {
					r.Transition = &livepatch.TransitionInfo{Patch: p.Name, Target: p.Target()}
				}
			}
		}
	}
	if n, err := livepatch.Host.Kernel().Tainted(); err == nil {
		r.Tainted = n
		r.TaintFlags = livepatch.TaintString(n)
	}
	st := openStore()
	es, ps, err := st.List(rel)
	if err != nil {
		return nil, err
	}
	r.Installed, r.Problems = installedView(st, rel, es), problemsView(ps)
	qs, err := st.Quarantined(rel)
	if err != nil {
		return nil, err
	}
	r.Quarantined = quarantinedView(qs)
	ms, err := st.Marks(rel)
	if err != nil {
		return nil, err
	}
	r.Applying = marksView(ms)
	rels, err := st.Releases()
	if err != nil {
		return nil, err
	}
	for _, other := range rels {
		if other == rel {
			continue
		}
		if es, _, err := st.List(other); err == nil && len(es) > 0 {
			r.OtherKernels[other] = len(es)
		}
	}
	return r, nil
}

func newStatusCmd(g *globals) *cobra.Command {
	var prom string
	c := &cobra.Command{
		Use:   "status",
		Short: "Summarise live patching on this machine: loaded, installed, quarantined",
		Long: `status shows the kernel release, the patches loaded and any transition in
progress, the patches installed for this kernel, quarantined patches (with
the reason), problems found in the store, and the kernel's taint.

--prometheus FILE writes the same as node_exporter textfile-collector
metrics (atomically; point it into the collector's directory, e.g.
/var/lib/prometheus/node-exporter/kelp.prom).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := gatherStatus()
			if err != nil {
				return g.emit(cmd, nil, failWith(err, "status: %v", err))
			}
			if prom != "" {
				var buf bytes.Buffer
				writeMetrics(&buf, r)
				if st, err := os.Stat(filepath.Dir(prom)); err != nil || !st.IsDir() {
					return g.emit(cmd, nil, exitWith(exitFailure, "status: --prometheus %s: no directory %s (kelp creates only the file)", prom, filepath.Dir(prom)))
				}
				if err := atomicfile.Replace(prom, buf.Bytes(), 0o644); err != nil {
					return g.emit(cmd, nil, failWith(err, "status: --prometheus: %v", err))
				}
			}
			if g.json {
				return g.emit(cmd, r, nil)
			}
			if prom == "" {
				printStatus(cmd.OutOrStdout(), r)
			}
			return nil
		},
	}
	c.Flags().StringVar(&prom, "prometheus", "", "also write node_exporter textfile metrics to this file")
	return c
}

func printStatus(w io.Writer, r *statusReport) {
	fmt.Fprintf(w, "kernel:       %s\n", r.Kernel)
	if !r.LivepatchSupported {
		fmt.Fprintln(w, "livepatch:    not supported by this kernel")
	}
	fmt.Fprintf(w, "loaded:       %s\n", orNone(patchNames(r.Loaded)))
	if t := r.Transition; t != nil {
		fmt.Fprintf(w, "transition:   %s %s\n", t.Patch, t.Target.Verb())
	}
	var inst []string
	for _, e := range r.Installed {
		inst = append(inst, e.Name)
	}
	fmt.Fprintf(w, "installed:    %s\n", orNone(inst))
	for _, q := range r.Quarantined {
		fmt.Fprintf(w, "quarantined:  %s since %s: %s\n", q.Name, q.QuarantinedAt.Format("2006-01-02 15:04:05Z07:00"), q.Reason)
	}
	for _, m := range r.Applying {
		fmt.Fprintf(w, "applying:     %s (since %s)\n", m.Name, m.StartedAt.Format("15:04:05"))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "store:        %s: %s\n", p.Path, p.Reason)
	}
	if r.Tainted != 0 {
		fmt.Fprintf(w, "taint:        %d %s\n", r.Tainted, r.TaintFlags)
	} else {
		fmt.Fprintln(w, "taint:        none")
	}
	others := make([]string, 0, len(r.OtherKernels))
	for k, n := range r.OtherKernels {
		others = append(others, fmt.Sprintf("%s (%d)", k, n))
	}
	sort.Strings(others)
	if len(others) > 0 {
		fmt.Fprintf(w, "other kernels: %s\n", strings.Join(others, ", "))
	}
}

func patchNames(ps []livepatch.Patch) []string {
	var out []string
	for _, p := range ps {
		s := p.Name
		if !p.Enabled {
			s += " (disabled)"
		}
		out = append(out, s)
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// writeMetrics renders r in the Prometheus text exposition format.
func writeMetrics(w io.Writer, r *statusReport) {
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	fmt.Fprintf(w, "# HELP kelp_kernel_info Running kernel release.\n# TYPE kelp_kernel_info gauge\nkelp_kernel_info{release=%q} 1\n", r.Kernel)
	gauge("kelp_livepatch_supported", "Whether the kernel has livepatch support.", b2f(r.LivepatchSupported))
	gauge("kelp_patches_loaded", "Livepatches registered with the kernel.", float64(len(r.Loaded)))
	gauge("kelp_patches_installed", "Patches installed for the running kernel.", float64(len(r.Installed)))
	gauge("kelp_patches_quarantined", "Installed patches not loaded at boot after a crash.", float64(len(r.Quarantined)))
	gauge("kelp_transition_in_progress", "Whether a livepatch transition is in progress.", b2f(r.Transition != nil))
	gauge("kelp_store_problems", "Damaged or leftover files found in the patch store.", float64(len(r.Problems)))
	gauge("kelp_kernel_tainted", "Value of /proc/sys/kernel/tainted.", float64(r.Tainted))
	fmt.Fprintln(w, "# HELP kelp_patch Per-patch state (loaded, enabled, installed, quarantined).")
	fmt.Fprintln(w, "# TYPE kelp_patch gauge")
	for _, p := range r.Loaded {
		fmt.Fprintf(w, "kelp_patch{name=%q,state=\"loaded\"} 1\n", p.Name)
		fmt.Fprintf(w, "kelp_patch{name=%q,state=\"enabled\"} %g\n", p.Name, b2f(p.Enabled))
	}
	for _, e := range r.Installed {
		fmt.Fprintf(w, "kelp_patch{name=%q,state=\"installed\"} 1\n", e.Name)
	}
	for _, q := range r.Quarantined {
		fmt.Fprintf(w, "kelp_patch{name=%q,state=\"quarantined\"} 1\n", q.Name)
	}
}
