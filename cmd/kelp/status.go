package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
	"github.com/spf13/cobra"
)

// statusReport is `kelp status --json`.
type statusReport struct {
	Kernel string `json:"kernel"`
	// LivepatchSupported: the kernel has the livepatch core
	// (/sys/kernel/livepatch).
	LivepatchSupported bool          `json:"livepatch_supported"`
	Loaded             []loadedPatch `json:"loaded"`
	// Transition is the transition under way, null when there is none.
	Transition *livepatch.TransitionInfo `json:"transition"`
	// TransitionSeconds is how long it has been under way, when the
	// kernel log still says when it started.
	TransitionSeconds *float64 `json:"transition_seconds,omitempty"`
	// FixedCVEs are the CVE ids the loaded, enabled patches fix (a patch
	// in its patching transition counts once the transition completes).
	FixedCVEs []string `json:"fixed_cves"`
	// FixesUnknown are the loaded, enabled patches that do not say what
	// they fix (not built by kelp, or by a kelp that did not record it):
	// FixedCVEs may miss what they fix.
	FixesUnknown []string `json:"fixes_unknown"`
	// NotLoaded are the patches installed for the running kernel that are
	// not loaded (neither quarantined nor made unnecessary by a later
	// cumulative patch), and NotLoadedCVEs the CVE ids installed patches
	// name that no loaded patch fixes.
	NotLoaded     []string           `json:"not_loaded"`
	NotLoadedCVEs []string           `json:"not_loaded_cves"`
	Installed     []installedPatch   `json:"installed"`
	Quarantined   []quarantinedPatch `json:"quarantined"`
	Applying      []applyingMark     `json:"applying"`
	Problems      []storeProblem     `json:"problems"`
	Tainted       uint64             `json:"tainted"`
	TaintFlags    string             `json:"taint_flags"`
	// OtherKernels counts the patches installed for other kernel releases.
	OtherKernels map[string]int `json:"other_kernels"`
}

// loadedPatch is a registered patch and what its module says it fixes
// (read from the kernel: /sys/module/NAME/notes/.note.kelp).
type loadedPatch struct {
	livepatch.Patch
	kmod.Fixes
}

// fixes tells whether the patch counts for the CVE ids fixed: enabled
// and its patching transition complete.
func (p loadedPatch) fixes() bool { return p.Enabled && !p.Transition }

func gatherStatus() (*statusReport, error) {
	rel, err := livepatch.Host.Release()
	if err != nil {
		return nil, err
	}
	r := &statusReport{Kernel: rel, Loaded: []loadedPatch{}, OtherKernels: map[string]int{}}
	if ps, err := livepatch.Host.Patches(); err == nil {
		r.LivepatchSupported = true
		for _, p := range ps {
			f, _ := livepatch.Host.Fixes(p.Name)
			r.Loaded = append(r.Loaded, loadedPatch{Patch: p, Fixes: f})
			if p.Transition {
				if l, err := livepatch.Host.List(); err == nil && l.Transition != nil {
					r.Transition = l.Transition
				} else {
					r.Transition = &livepatch.TransitionInfo{Patch: p.Name, Target: p.Target()}
				}
				if age, ok := livepatch.Host.TransitionAge(p.Name); ok {
					secs := age.Seconds()
					r.TransitionSeconds = &secs
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
	r.FixedCVEs, r.NotLoaded, r.NotLoadedCVEs = fixedView(r.Loaded, r.Installed, store.LoadSet(es), qs)
	r.FixesUnknown = []string{}
	for _, p := range r.Loaded {
		if p.fixes() && !p.Known {
			r.FixesUnknown = append(r.FixesUnknown, p.Name)
		}
	}
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

// fixedView derives, from the loaded and installed patches, the CVE ids
// fixed, the installed patches not loaded and the CVE ids only those name.
func fixedView(loaded []loadedPatch, installed []installedPatch, loadSet []store.Entry, qs []store.Quarantine) (fixed, notLoaded, notLoadedCVEs []string) {
	fixed, notLoaded, notLoadedCVEs = []string{}, []string{}, []string{}
	running := map[string]bool{}
	for _, p := range loaded {
		running[p.Name] = p.Enabled
		if p.fixes() {
			fixed = append(fixed, p.CVEs...)
		}
	}
	fixed = build.SortCVEs(fixed)
	quarantined := map[string]bool{}
	for _, q := range qs {
		quarantined[q.Name] = true
	}
	for _, e := range loadSet {
		if !running[e.Name] && !quarantined[e.Name] {
			notLoaded = append(notLoaded, e.Name)
		}
	}
	for _, p := range installed {
		for _, c := range p.CVEs {
			if !slices.Contains(fixed, c) {
				notLoadedCVEs = append(notLoadedCVEs, c)
			}
		}
	}
	return fixed, notLoaded, build.SortCVEs(notLoadedCVEs)
}

func newStatusCmd(g *globals) *cobra.Command {
	var prom string
	c := &cobra.Command{
		Use:   "status",
		Short: "Summarise live patching on this machine: loaded, installed, quarantined",
		Long: `status shows the kernel release, the patches loaded and any transition in
progress, the patches installed for this kernel, quarantined patches (with
the reason), problems found in the store, and the kernel's taint; and
what is fixed: the CVE ids of the loaded, enabled patches (read from the
kernel, /sys/module/NAME/notes/.note.kelp), and those of installed patches
that are not loaded.

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
		since := ""
		if r.TransitionSeconds != nil {
			since = fmt.Sprintf(" for %s", fmtDur(time.Duration(*r.TransitionSeconds*float64(time.Second))))
		}
		fmt.Fprintf(w, "transition:   %s %s%s\n", t.Patch, t.Target.Verb(), since)
	}
	var inst []string
	for _, e := range r.Installed {
		inst = append(inst, e.Name)
	}
	fmt.Fprintf(w, "installed:    %s\n", orNone(inst))
	fmt.Fprintf(w, "fixed:        %s\n", orNone(r.FixedCVEs))
	if len(r.FixesUnknown) > 0 {
		fmt.Fprintf(w, "fixes unknown: %s (loaded, without a record of what they fix)\n", strings.Join(r.FixesUnknown, ", "))
	}
	if len(r.NotLoaded) > 0 {
		fmt.Fprintf(w, "not loaded:   %s\n", strings.Join(r.NotLoaded, ", "))
	}
	if len(r.NotLoadedCVEs) > 0 {
		fmt.Fprintf(w, "not fixed:    %s (installed, not loaded)\n", strings.Join(r.NotLoadedCVEs, ", "))
	}
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

func patchNames(ps []loadedPatch) []string {
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
	gauge("kelp_patches_not_loaded", "Patches installed for the running kernel that are not loaded (not counting quarantined ones and those a later cumulative patch makes unnecessary).", float64(len(r.NotLoaded)))
	gauge("kelp_patches_fixes_unknown", "Loaded, enabled patches that do not say what they fix (kelp_cve_fixed may miss what they fix).", float64(len(r.FixesUnknown)))
	if r.TransitionSeconds != nil {
		gauge("kelp_transition_seconds", "How long the livepatch transition in progress has been under way.", *r.TransitionSeconds)
	}
	fmt.Fprintln(w, "# HELP kelp_patch_info What a loaded, enabled patch fixes: one series per CVE id (cve=\"\" for a patch that names none); description is its first line.")
	fmt.Fprintln(w, "# TYPE kelp_patch_info gauge")
	for _, p := range r.Loaded {
		if !p.fixes() {
			continue
		}
		cves := p.CVEs
		if len(cves) == 0 {
			cves = []string{""}
		}
		for _, c := range cves {
			fmt.Fprintf(w, "kelp_patch_info{patch=%s,cve=%s,description=%s} 1\n", promLabel(p.Name), promLabel(c), promLabel(p.Summary()))
		}
	}
	fmt.Fprintln(w, "# HELP kelp_cve_fixed CVE ids the loaded, enabled patches fix.")
	fmt.Fprintln(w, "# TYPE kelp_cve_fixed gauge")
	for _, c := range r.FixedCVEs {
		fmt.Fprintf(w, "kelp_cve_fixed{cve=%s} 1\n", promLabel(c))
	}
	fmt.Fprintln(w, "# HELP kelp_cve_not_loaded CVE ids installed patches name that no loaded patch fixes.")
	fmt.Fprintln(w, "# TYPE kelp_cve_not_loaded gauge")
	for _, c := range r.NotLoadedCVEs {
		fmt.Fprintf(w, "kelp_cve_not_loaded{cve=%s} 1\n", promLabel(c))
	}
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

// promLabel quotes a label value for the Prometheus text format: \\, \"
// and \n escaped, everything else as is.
func promLabel(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
