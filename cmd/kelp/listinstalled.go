package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/kelp-project/kelp/livepatch"
)

// listReport is `kelp list --json`: the running kernel's patches and the
// store's contents per kernel.
type listReport struct {
	*livepatch.Listing
	// Patches are Listing's, with what each says it fixes.
	Patches   []listedPatch     `json:"patches"`
	Installed []installedKernel `json:"installed"`
}

type installedKernel struct {
	Kernel      string             `json:"kernel"`
	Running     bool               `json:"running"`
	Patches     []installedPatch   `json:"patches"`
	Quarantined []quarantinedPatch `json:"quarantined"`
	Problems    []storeProblem     `json:"problems"`
}

func installedKernels() ([]installedKernel, error) {
	st := openStore()
	rels, err := st.Releases()
	if err != nil {
		return nil, err
	}
	running, _ := livepatch.Host.Release()
	out := []installedKernel{}
	for _, rel := range rels {
		es, ps, err := st.List(rel)
		if err != nil {
			return nil, err
		}
		qs, err := st.Quarantined(rel)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 && len(qs) == 0 && len(ps) == 0 {
			continue
		}
		out = append(out, installedKernel{Kernel: rel, Running: rel == running, Patches: installedView(st, rel, es), Quarantined: quarantinedView(qs), Problems: problemsView(ps)})
	}
	return out, nil
}

func printInstalled(out io.Writer, kernels []installedKernel) {
	if len(kernels) == 0 {
		return
	}
	fmt.Fprintln(out, "\ninstalled patches:")
	for _, k := range kernels {
		var names []string
		quarantined := map[string]string{}
		for _, q := range k.Quarantined {
			quarantined[q.Name] = q.Reason
		}
		for _, e := range k.Patches {
			n := e.Name
			if e.Cumulative {
				n += " (cumulative)"
			}
			if len(e.CVEs) > 0 {
				n += " [" + strings.Join(e.CVEs, ",") + "]"
			}
			if _, ok := quarantined[e.Name]; ok {
				n += " (quarantined)"
			}
			names = append(names, n)
		}
		label := k.Kernel
		if k.Running {
			label += " (running)"
		}
		fmt.Fprintf(out, "  %s: %s\n", label, orNone(names))
		for _, q := range k.Quarantined {
			fmt.Fprintf(out, "    %s quarantined: %s\n", q.Name, q.Reason)
		}
		for _, p := range k.Problems {
			fmt.Fprintf(out, "    store: %s: %s\n", p.Path, p.Reason)
		}
	}
}
