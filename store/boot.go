package store

import (
	"context"
	"fmt"
	"time"
)

// Loader applies one patch module and returns once its transition has
// completed (or failed and been reverted).
type Loader interface {
	Load(ctx context.Context, path string) error
}

// BootEvent is one thing the boot load did, for the caller to report.
type BootEvent struct {
	Patch  string `json:"patch"`
	Action string `json:"action"` // quarantined, skipped, loaded, failed, problem
	Detail string `json:"detail,omitempty"`
}

// BootOptions tune LoadAll.
type BootOptions struct {
	BootID string
	// Settle is how long the system must stay up after the last load
	// before the applying marks are cleared.
	Settle time.Duration
	// Ready is called after the loads, before the settle wait (a service
	// manager can be told the loads are done).
	Ready  func()
	Events func(BootEvent)
}

// LoadAll loads release's installed patches with the crash-loop guard:
// marks left by an earlier boot quarantine their patch; quarantined and
// damaged patches are skipped; each load is preceded by a durable mark that
// is cleared once the system stayed up for the settle time. It returns the
// number of patches that failed to load.
func (s *Store) LoadAll(ctx context.Context, release string, l Loader, opts BootOptions) (int, error) {
	emit := func(ev BootEvent) {
		if opts.Events != nil {
			opts.Events(ev)
		}
	}
	marks, err := s.Marks(release)
	if err != nil {
		return 0, err
	}
	for _, m := range marks {
		if m.BootID == opts.BootID && opts.BootID != "" {
			continue // this boot's own mark from an earlier call
		}
		reason := fmt.Sprintf("the machine stopped while or shortly after applying it (boot %s, started %s)", shortID(m.BootID), m.Started.Format(time.RFC3339))
		if err := s.QuarantinePatch(release, m.Name, reason); err != nil {
			return 0, err
		}
		if err := s.ClearMark(release, m.Name); err != nil {
			return 0, err
		}
		emit(BootEvent{Patch: m.Name, Action: "quarantined", Detail: reason})
	}
	entries, problems, err := s.List(release)
	if err != nil {
		return 0, err
	}
	for _, p := range problems {
		emit(BootEvent{Action: "problem", Detail: p.String()})
	}
	quarantined, err := s.Quarantined(release)
	if err != nil {
		return 0, err
	}
	isQ := map[string]string{}
	for _, q := range quarantined {
		isQ[q.Name] = q.Reason
	}
	var applied []string
	failed := 0
	for _, e := range LoadSet(entries) {
		if reason, ok := isQ[e.Name]; ok {
			emit(BootEvent{Patch: e.Name, Action: "skipped", Detail: "quarantined: " + reason})
			continue
		}
		if err := s.MarkApplying(release, e.Name, opts.BootID); err != nil {
			return failed, err
		}
		if err := l.Load(ctx, s.Path(release, e)); err != nil {
			failed++
			s.ClearMark(release, e.Name)
			emit(BootEvent{Patch: e.Name, Action: "failed", Detail: err.Error()})
			continue
		}
		applied = append(applied, e.Name)
		emit(BootEvent{Patch: e.Name, Action: "loaded"})
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	if len(applied) > 0 && opts.Settle > 0 {
		select {
		case <-time.After(opts.Settle):
		case <-ctx.Done():
			return failed, ctx.Err()
		}
	}
	for _, name := range applied {
		if err := s.ClearMark(release, name); err != nil {
			return failed, err
		}
	}
	return failed, nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	if id == "" {
		return "unknown"
	}
	return id
}
