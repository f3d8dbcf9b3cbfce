package livepatch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kmsgFollower collects the kernel log lines printed from its start on
// that concern livepatching (prefix "livepatch: ") or one of the named
// modules. It reads /dev/kmsg, which every record reaches whatever the
// console log level. When /dev/kmsg cannot be read (no privilege, no
// device) the follower is empty and kelp works without it.
type kmsgFollower struct {
	f      *os.File
	mu     sync.Mutex
	names  []string
	lines  []string
	usecs  []int64 // kernel timestamp of each line, µs since boot
	onLine func(string)
	done   chan struct{}
}

// followKernelLog starts a follower; names are the modules whose messages
// to keep. onLine, when set, is called for each kept line (from another
// goroutine).
func (s System) followKernelLog(onLine func(string), names ...string) *kmsgFollower {
	k := &kmsgFollower{names: names, onLine: onLine, done: make(chan struct{})}
	f, err := os.Open(s.path("dev", "kmsg"))
	if err != nil {
		close(k.done)
		return k
	}
	// Start at the end: only what is printed from now on matters.
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		close(k.done)
		return k
	}
	k.f = f
	go k.run()
	return k
}

func (k *kmsgFollower) run() {
	defer close(k.done)
	buf := make([]byte, 8192)
	for {
		n, err := k.f.Read(buf)
		if err != nil {
			// EPIPE: records were overwritten before we read them; the
			// next read continues with the oldest available one.
			if errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			if !isEPIPE(err) {
				return
			}
			continue
		}
		if msg, usec, ok := parseKmsgRecord(buf[:n]); ok && k.wants(msg) {
			k.mu.Lock()
			k.lines = append(k.lines, msg)
			k.usecs = append(k.usecs, usec)
			k.mu.Unlock()
			if k.onLine != nil {
				k.onLine(msg)
			}
		}
	}
}

func (k *kmsgFollower) wants(msg string) bool {
	if strings.HasPrefix(msg, "livepatch: ") {
		return true
	}
	for _, n := range k.names {
		if strings.Contains(msg, n) {
			return true
		}
	}
	return false
}

// Lines returns the lines kept so far.
func (k *kmsgFollower) Lines() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.lines...)
}

// Stop ends the follower and returns every kept line. Records already in
// the kernel's buffer are read first (for 50 ms at most).
func (k *kmsgFollower) Stop() []string { return k.StopAfter("") }

// StopAfter is Stop once a line containing want has been read, or 200 ms
// have passed: the kernel prints "'p': patching complete" just before the
// transition file turns 0, so the caller may see the end of a transition
// before the follower has read that line.
func (k *kmsgFollower) StopAfter(want string) []string {
	if k.f == nil {
		return nil
	}
	if want != "" {
		deadline := time.Now().Add(200 * time.Millisecond)
		for !k.has(want) && time.Now().Before(deadline) {
			select {
			case <-k.done:
				deadline = time.Now()
			case <-time.After(time.Millisecond):
			}
		}
		k.f.Close()
	} else if err := k.f.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		k.f.Close()
	}
	<-k.done
	k.f.Close()
	return k.Lines()
}

func (k *kmsgFollower) has(want string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, l := range k.lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// span returns the kernel time from the first kept line containing from
// to the first later one containing to.
func (k *kmsgFollower) span(from, to string) (time.Duration, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	start := -1
	for i, l := range k.lines {
		switch {
		case start < 0 && strings.Contains(l, from):
			start = i
		case start >= 0 && strings.Contains(l, to):
			return time.Duration(k.usecs[i]-k.usecs[start]) * time.Microsecond, true
		}
	}
	return 0, false
}

// parseKmsgRecord extracts the message and timestamp (µs since boot) of
// one /dev/kmsg record: "prio,seq,usec,flags[,...];message\n" followed by
// " KEY=value" lines.
func parseKmsgRecord(rec []byte) (string, int64, bool) {
	i := bytes.IndexByte(rec, ';')
	if i < 0 {
		return "", 0, false
	}
	var usec int64
	if f := strings.Split(string(rec[:i]), ","); len(f) >= 3 {
		usec, _ = strconv.ParseInt(f[2], 10, 64)
	}
	msg := rec[i+1:]
	if j := bytes.IndexByte(msg, '\n'); j >= 0 {
		msg = msg[:j]
	}
	return unescapeKmsg(string(msg)), usec, true
}

// unescapeKmsg undoes /dev/kmsg's \xNN escaping of non-printable bytes.
func unescapeKmsg(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, ok := hexByte(s[i+2], s[i+3]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hexByte(a, b byte) (byte, bool) {
	h := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}

// hintLine picks the kernel log line that best explains a failure.
func hintLine(lines []string) string {
	keys := []string{"not compatible", "failed", "rejected", "Unknown symbol", "unknown parameter", "invalid", "error", "refusing"}
	for _, key := range keys {
		for _, l := range lines {
			if strings.Contains(l, key) {
				return l
			}
		}
	}
	return ""
}
