package main

import (
	"os"
	"strings"
	"time"

	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
	"github.com/spf13/cobra"
)

// envStore names the environment variable that moves the patch store.
const envStore = "KELP_STORE_DIR"

func openStore() *store.Store { return store.New(os.Getenv(envStore)) }

// addKernelFlag adds -k/--kernel, defaulting to the running kernel.
func addKernelFlag(c *cobra.Command, kver *string) {
	c.Flags().StringVarP(kver, "kernel", "k", "", "kernel release (default: the running kernel, uname -r)")
	c.RegisterFlagCompletionFunc("kernel", completeReleases)
}

func kernelOrRunning(kver string) (string, error) {
	if kver != "" {
		return kver, nil
	}
	rel, err := livepatch.Host.Release()
	if err != nil {
		return "", failWith(err, "%v (give --kernel)", err)
	}
	return rel, nil
}

// The store as kelp's JSON shows it (docs/cli.md): the index on disk keeps
// its own field names.

// installedPatch is a patch installed in the store.
type installedPatch struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	SHA256   string `json:"sha256"`
	Vermagic string `json:"vermagic"`
	// Cumulative: an atomic-replace patch; the ones installed before it
	// are not loaded at boot.
	Cumulative  bool      `json:"cumulative"`
	InstalledAt time.Time `json:"installed_at"`
	// Description and CVEs: what the module file says it fixes
	// (.modinfo kelp.description, kelp.cve).
	kmod.Fixes
}

func installedView(st *store.Store, rel string, es []store.Entry) []installedPatch {
	out := make([]installedPatch, 0, len(es))
	for _, e := range es {
		p := installedPatch{Name: e.Name, File: st.Path(rel, e), SHA256: e.SHA256, Vermagic: strings.TrimSpace(e.Vermagic), Cumulative: e.Replace, InstalledAt: e.Installed, Fixes: kmod.Fixes{CVEs: []string{}}}
		if m, err := kmod.Open(p.File); err == nil {
			p.Fixes = kmod.FixesOf(m.Info)
		}
		out = append(out, p)
	}
	return out
}

// quarantinedPatch is an installed patch not loaded at boot.
type quarantinedPatch struct {
	Name          string    `json:"name"`
	Reason        string    `json:"reason"`
	QuarantinedAt time.Time `json:"quarantined_at"`
}

func quarantinedView(qs []store.Quarantine) []quarantinedPatch {
	out := make([]quarantinedPatch, 0, len(qs))
	for _, q := range qs {
		out = append(out, quarantinedPatch{Name: q.Name, Reason: q.Reason, QuarantinedAt: q.Since})
	}
	return out
}

// applyingMark is a patch being applied at boot (its crash-loop mark).
type applyingMark struct {
	Name      string    `json:"name"`
	BootID    string    `json:"boot_id"`
	StartedAt time.Time `json:"started_at"`
}

func marksView(ms []store.Mark) []applyingMark {
	out := make([]applyingMark, 0, len(ms))
	for _, m := range ms {
		out = append(out, applyingMark{Name: m.Name, BootID: m.BootID, StartedAt: m.Started})
	}
	return out
}

// storeProblem is a damaged or leftover file in the store.
type storeProblem struct {
	Kernel string `json:"kernel"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func problemsView(ps []store.Problem) []storeProblem {
	out := make([]storeProblem, 0, len(ps))
	for _, p := range ps {
		out = append(out, storeProblem{Kernel: p.Release, Path: p.Path, Reason: p.Reason})
	}
	return out
}
