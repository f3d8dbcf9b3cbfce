package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
)

// installedPath resolves `kelp load NAME` to an installed patch of the
// running kernel. Arguments that look like files are left alone.
func installedPath(arg string) (string, bool) {
	if strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".ko") {
		return "", false
	}
	if _, err := os.Stat(arg); err == nil {
		return "", false
	}
	rel, err := livepatch.Host.Release()
	if err != nil {
		return "", false
	}
	st := openStore()
	entries, _, err := st.List(rel)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		if e.Name == arg || e.Name == strings.ReplaceAll(arg, "-", "_") {
			return st.Path(rel, e), true
		}
	}
	return "", false
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
	Kernel   string                  `json:"kernel"`
	Disabled bool                    `json:"disabled,omitempty"`
	Events   []store.BootEvent       `json:"events"`
	Results  []*livepatch.LoadResult `json:"results"`
	Failed   int                     `json:"failed"`
}

// loadAll loads the running kernel's installed patches with the crash-loop
// guard. With boot set it honours kelp.enable=0 on the kernel command line,
// tells systemd when the loads are done, and stays up for the settle time
// before clearing the applying marks.
func loadAll(ctx context.Context, out io.Writer, asJSON, boot bool, settle time.Duration, opts livepatch.LoadOptions) error {
	rel, err := livepatch.Host.Release()
	if err != nil {
		return exitWith(exitFailure, "load --all: %v", err)
	}
	rep := &bootReport{Kernel: rel, Events: []store.BootEvent{}, Results: []*livepatch.LoadResult{}}
	if boot && kernelCmdlineDisables() {
		rep.Disabled = true
		notifySystemd("READY=1\nSTATUS=disabled by kelp.enable=0")
		if asJSON {
			return writeJSON(out, rep)
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
		if asJSON {
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
	failed, err := openStore().LoadAll(ctx, rel, l, store.BootOptions{BootID: bootID(), Settle: settle, Ready: ready, Events: events})
	rep.Failed = failed
	rep.Results = append(rep.Results, l.results...)
	if err != nil {
		return exitWith(exitFailure, "load --all: %v", err)
	}
	if asJSON {
		if err := writeJSON(out, rep); err != nil {
			return err
		}
	} else if len(rep.Events) == 0 {
		fmt.Fprintf(out, "no patches installed for %s\n", rel)
	}
	if failed > 0 {
		return exitWith(exitFailure, "load --all: %d patch(es) failed to load", failed)
	}
	return nil
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

func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// kernelCmdlineDisables reports kelp.enable=0 on the kernel command line.
func kernelCmdlineDisables() bool {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range strings.Fields(string(data)) {
		if arg == "kelp.enable=0" {
			return true
		}
	}
	return false
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
