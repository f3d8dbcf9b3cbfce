package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/atomicfile"
)

// Mark says a patch is being applied: written (durably) before the load,
// removed once the transition completed and the system stayed up for the
// settle time. A mark left by an earlier boot means that boot died while
// or shortly after applying the patch.
type Mark struct {
	Name    string    `json:"name"`
	BootID  string    `json:"boot_id"`
	Started time.Time `json:"started"`
}

// Quarantine records why a patch is not loaded at boot any more.
type Quarantine struct {
	Name   string    `json:"name"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

func (s *Store) markPath(release, name string) string {
	return filepath.Join(s.dir(release), "applying", name)
}

func (s *Store) quarantinePath(release, name string) string {
	return filepath.Join(s.dir(release), "quarantine", name+".json")
}

// MarkApplying durably records that name is being applied in boot bootID.
func (s *Store) MarkApplying(release, name, bootID string) error {
	data, _ := json.Marshal(Mark{Name: name, BootID: bootID, Started: s.Now().UTC()})
	if err := atomicfile.WriteFile(s.markPath(release, name), data, 0o644); err != nil {
		return fmt.Errorf("mark %s as applying: %w", name, err)
	}
	return nil
}

// ClearMark removes name's applying mark.
func (s *Store) ClearMark(release, name string) error {
	err := os.Remove(s.markPath(release, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(s.markPath(release, name)))
}

// Marks returns the applying marks of release.
func (s *Store) Marks(release string) ([]Mark, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir(release), "applying"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Mark
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue // leftover temporary file
		}
		m := Mark{Name: e.Name()}
		if data, err := os.ReadFile(filepath.Join(s.dir(release), "applying", e.Name())); err == nil {
			json.Unmarshal(data, &m)
		}
		out = append(out, m)
	}
	return out, nil
}

// QuarantinePatch records that name must not be loaded at boot.
func (s *Store) QuarantinePatch(release, name, reason string) error {
	data, _ := json.MarshalIndent(Quarantine{Name: name, Reason: reason, Since: s.Now().UTC()}, "", "  ")
	return atomicfile.WriteFile(s.quarantinePath(release, name), append(data, '\n'), 0o644)
}

// Quarantined lists the quarantined patches of release by name.
func (s *Store) Quarantined(release string) ([]Quarantine, error) {
	dir := filepath.Join(s.dir(release), "quarantine")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Quarantine
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		q := Quarantine{Name: strings.TrimSuffix(e.Name(), ".json"), Reason: "unknown (unreadable quarantine record)"}
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			json.Unmarshal(data, &q)
		}
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Unquarantine lifts name's quarantine.
func (s *Store) Unquarantine(release, name string) error {
	err := os.Remove(s.quarantinePath(release, name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("patch %s is not quarantined for %s", name, release)
	}
	return err
}
