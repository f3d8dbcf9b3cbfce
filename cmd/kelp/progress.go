package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/livepatch"
)

// progress renders livepatch events on stderr: plain lines by default, a
// live-updated counter on a terminal, kernel log lines with -v, nothing
// under --json (the JSON result carries blockers and warnings).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	verbose bool
	quiet   bool
	// live is set while a \r-updated counter line is on screen.
	live     bool
	lastLine time.Time
	lastText string
}

func newProgress(g *globals, verbose bool) *progress {
	f, _ := g.stderr.(*os.File)
	return &progress{w: g.stderr, tty: f != nil && isTerminal(f), verbose: verbose, quiet: g.json}
}

func (p *progress) event(e livepatch.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet {
		return
	}
	switch e.Kind {
	case livepatch.EventStep:
		p.line(e.Message)
	case livepatch.EventWarning:
		p.line("warning: " + e.Message)
	case livepatch.EventKernelLog:
		if p.verbose {
			p.line("  kernel: " + e.Message)
		}
	case livepatch.EventProgress:
		text := fmt.Sprintf("%s %s: %d/%d tasks switched (%s)", e.Target.Verb(), e.Patch, e.Switched, e.Total, fmtDur(e.Elapsed))
		done := e.Switched == e.Total
		if p.tty {
			p.clearLive()
			fmt.Fprint(p.w, "\r"+text)
			p.live = true
			if done {
				fmt.Fprintln(p.w)
				p.live = false
			}
			return
		}
		// Plain output: one line a second at most, and the final one.
		if done || time.Since(p.lastLine) >= time.Second {
			counts := text[:strings.LastIndex(text, " (")]
			if counts != p.lastText {
				p.line(text)
				p.lastText = counts
			}
		}
	case livepatch.EventBlockers:
		word := "tasks have"
		if len(e.Blockers) == 1 {
			word = "task has"
		}
		p.line(fmt.Sprintf("%d %s not switched to the %s state after %s:", len(e.Blockers), word, e.Target, fmtDur(e.Elapsed)))
		fmt.Fprint(p.w, describeBlockers(e.Blockers))
	}
}

// line prints a whole line, ending a live counter first.
func (p *progress) line(s string) {
	if p.live {
		fmt.Fprintln(p.w)
		p.live = false
	}
	fmt.Fprintln(p.w, s)
	p.lastLine = time.Now()
}

func (p *progress) clearLive() {
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// describeBlockers renders blocking tasks: one line each, kernel stack
// indented below.
func describeBlockers(ts []livepatch.Task) string {
	var b strings.Builder
	for _, t := range ts {
		kind := ""
		if t.Kernel {
			kind = " (kernel thread)"
		}
		fmt.Fprintf(&b, "  pid %d tid %d %s%s, patch state %s\n", t.PID, t.TID, t.Comm, kind, t.State)
		for _, f := range t.Stack {
			fmt.Fprintf(&b, "      %s\n", f)
		}
		if len(t.Stack) == 0 {
			fmt.Fprintf(&b, "      (kernel stack unreadable)\n")
		}
	}
	return b.String()
}

func fmtDur(d time.Duration) string { return livepatch.Duration(d).String() }

func isTerminal(f *os.File) bool {
	return sys.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}
