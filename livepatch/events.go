package livepatch

import (
	"fmt"
	"strconv"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventStep: kelp starts a step (Message), e.g. "loading module".
	EventStep EventKind = iota
	// EventProgress: tasks switched so far in a transition.
	EventProgress
	// EventBlockers: the tasks holding a transition up (at a timeout).
	EventBlockers
	// EventKernelLog: a kernel log line about the patch (Message).
	EventKernelLog
	// EventWarning: something the admin must know (Message).
	EventWarning
)

// Event is one report of a long operation. Nothing in this package prints;
// callers render events (the CLI as progress lines).
type Event struct {
	Kind    EventKind
	Patch   string
	Message string
	// Target is the state a transition moves to (EventProgress,
	// EventBlockers).
	Target   State
	Switched int
	Total    int
	Elapsed  time.Duration
	Blockers []Task
}

// Duration is a time.Duration that reads as seconds in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', 6, 64), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration in seconds: %w", err)
	}
	*d = Duration(time.Duration(f * float64(time.Second)))
	return nil
}

func (d Duration) String() string { return fmtDuration(time.Duration(d)) }

// fmtDuration prints durations the way an admin reads them: "850ms", "1.02s".
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// reporter wraps an optional callback.
type reporter func(Event)

func (r reporter) send(e Event) {
	if r != nil {
		r(e)
	}
}

func (r reporter) step(patch, msg string) { r.send(Event{Kind: EventStep, Patch: patch, Message: msg}) }
func (r reporter) warn(patch, msg string) {
	r.send(Event{Kind: EventWarning, Patch: patch, Message: msg})
}
