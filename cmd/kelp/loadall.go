package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
	"github.com/spf13/cobra"
)

// installedPath resolves `kelp load NAME` to an installed patch of the
// running kernel: its path, or its quarantine when it has one. Arguments
// that look like files are left alone ("", nil, nil); a name that is
// neither a file nor installed is an error.
func installedPath(arg string) (string, *quarantinedPatch, error) {
	if strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".ko") {
		return "", nil, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return "", nil, nil
	}
	rel, err := livepatch.Host.Release()
	if err != nil {
		return "", nil, failWith(err, "load: %s: no such file, and the running kernel's release is unreadable: %v", arg, err)
	}
	st := openStore()
	entries, _, err := st.List(rel)
	if err != nil {
		return "", nil, failWith(err, "load: %s: no such file, and the store is unreadable: %v", arg, err)
	}
	name := strings.ReplaceAll(arg, "-", "_")
	for _, e := range entries {
		if e.Name != arg && e.Name != name {
			continue
		}
		qs, err := st.Quarantined(rel)
		if err != nil {
			return "", nil, failWith(err, "load: %s: %v", arg, err)
		}
		for _, q := range quarantinedView(qs) {
			if q.Name == e.Name {
				return "", &q, nil
			}
		}
		return st.Path(rel, e), nil, nil
	}
	return "", nil, exitWith(exitFailure, "load: %s: no such file, and no patch of that name is installed for %s (see kelp list)", arg, rel)
}

// storeLoader applies installed patches for the boot load.
type storeLoader struct {
	opts    livepatch.LoadOptions
	results []*livepatch.LoadResult
}

func (l *storeLoader) Load(ctx context.Context, path string) error {
	r, err := livepatch.Host.Load(ctx, path, l.opts)
	if r != nil {
		l.results = append(l.results, r)
	}
	return err
}

// bootReport is `kelp load --all --json`.
type bootReport struct {
	Kernel string `json:"kernel"`
	// DisabledByCmdline: kelp.enable=0 is on the kernel command line.
	DisabledByCmdline bool                    `json:"disabled_by_cmdline"`
	Events            []store.BootEvent       `json:"events"`
	Results           []*livepatch.LoadResult `json:"results"`
	Failed            int                     `json:"failed"`
}

// loadAll loads the running kernel's installed patches with the crash-loop
// guard. With boot set it honours kelp.enable=0 on the kernel command line,
// tells systemd when the loads are done, and stays up for the settle time
// before clearing the applying marks.
func loadAll(ctx context.Context, cmd *cobra.Command, g *globals, boot bool, settle time.Duration, opts livepatch.LoadOptions) error {
	out := cmd.OutOrStdout()
	rep := &bootReport{Events: []store.BootEvent{}, Results: []*livepatch.LoadResult{}}
	rel, err := livepatch.Host.Release()
	if err != nil {
		return g.emit(cmd, rep, failWith(err, "load --all: %v", err))
	}
	rep.Kernel = rel
	kernel := livepatch.Host.Kernel()
	if boot && kernel.CmdlineHas("kelp.enable=0") {
		rep.DisabledByCmdline = true
		notifySystemd("READY=1\nSTATUS=disabled by kelp.enable=0")
		if g.json {
			return g.emit(cmd, rep, nil)
		}
		fmt.Fprintln(out, "kelp: kelp.enable=0 on the kernel command line: no patches loaded")
		return nil
	}
	if !boot {
		settle = 0
	}
	l := &storeLoader{opts: opts}
	events := func(ev store.BootEvent) {
		rep.Events = append(rep.Events, ev)
		if g.json {
			return
		}
		switch {
		case ev.Patch == "":
			fmt.Fprintf(out, "%s: %s\n", ev.Action, ev.Detail)
		case ev.Detail == "":
			fmt.Fprintf(out, "%s: %s\n", ev.Patch, ev.Action)
		default:
			fmt.Fprintf(out, "%s: %s: %s\n", ev.Patch, ev.Action, ev.Detail)
		}
	}
	ready := func() {
		notifySystemd(fmt.Sprintf("READY=1\nSTATUS=%d loaded, %d failed; settling", countAction(rep.Events, "loaded"), countAction(rep.Events, "failed")))
	}
	failed, err := openStore().LoadAll(ctx, rel, l, store.BootOptions{BootID: kernel.BootID(), Settle: settle, Ready: ready, Events: events})
	rep.Failed = failed
	rep.Results = append(rep.Results, l.results...)
	switch {
	case err != nil:
		err = failWith(err, "load --all: %v", err)
	case failed > 0:
		err = exitWith(exitFailure, "load --all: %d patch(es) failed to load", failed)
	}
	if g.json {
		return g.emit(cmd, rep, err)
	}
	if err == nil && len(rep.Events) == 0 {
		fmt.Fprintf(out, "no patches installed for %s\n", rel)
	}
	return err
}

func countAction(evs []store.BootEvent, action string) int {
	n := 0
	for _, e := range evs {
		if e.Action == action {
			n++
		}
	}
	return n
}

// notifySystemd sends a state string to the service manager when kelp runs
// as a Type=notify service ($NOTIFY_SOCKET); elsewhere it does nothing.
func notifySystemd(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:]
	} else if !filepath.IsAbs(sock) {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}
