package main

import (
	"fmt"
	"io"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
)

// listReport is `kelp list --json`: the running kernel's patches and the
// store's contents per kernel.
type listReport struct {
	*livepatch.Listing
	Installed []installedKernel `json:"installed"`
}

type installedKernel struct {
	Kernel      string             `json:"kernel"`
	Running     bool               `json:"running"`
	Patches     []store.Entry      `json:"patches"`
	Quarantined []store.Quarantine `json:"quarantined,omitempty"`
	Problems    []store.Problem    `json:"problems,omitempty"`
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
		ik := installedKernel{Kernel: rel, Running: rel == running}
		if ik.Patches, ik.Problems, err = st.List(rel); err != nil {
			return nil, err
		}
		if ik.Quarantined, err = st.Quarantined(rel); err != nil {
			return nil, err
		}
		if len(ik.Patches) == 0 && len(ik.Quarantined) == 0 && len(ik.Problems) == 0 {
			continue
		}
		if ik.Patches == nil {
			ik.Patches = []store.Entry{}
		}
		out = append(out, ik)
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
			if e.Replace {
				n += " (cumulative)"
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
			fmt.Fprintf(out, "    store: %s\n", p)
		}
	}
}
