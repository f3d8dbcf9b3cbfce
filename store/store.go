// Package store keeps installed livepatch modules per kernel release under
// /var/lib/kelp/<release>/, so they can be loaded again at boot:
//
//	<release>/patches/<name>.ko   the module files
//	<release>/index.json          install order, digests, flags
//	<release>/applying/<name>     crash-loop guard marks (see guard.go)
//	<release>/quarantine/<name>.json  patches not to be loaded again
//
// Every change is atomic (temporary file, fsync, rename, directory fsync),
// so a power loss leaves either the old or the new state; leftovers of an
// interrupted change are detected, reported and never loaded.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/kmod"
)

// DefaultRoot is where installed patches live.
const DefaultRoot = "/var/lib/kelp"

// Store is the patch store rooted at Root.
type Store struct {
	Root string
	// Now is the clock (tests replace it).
	Now func() time.Time
}

// New returns a store at root (DefaultRoot when empty).
func New(root string) *Store {
	if root == "" {
		root = DefaultRoot
	}
	return &Store{Root: root, Now: time.Now}
}

// Entry is one installed patch.
type Entry struct {
	Name      string    `json:"name"`
	File      string    `json:"file"` // relative to the release directory
	SHA256    string    `json:"sha256"`
	Vermagic  string    `json:"vermagic"`
	Replace   bool      `json:"replace"`
	Installed time.Time `json:"installed"`
	Seq       int       `json:"seq"`
}

type index struct {
	Version int     `json:"version"`
	NextSeq int     `json:"next_seq"`
	Patches []Entry `json:"patches"`
}

// Problem is something wrong found in the store that was skipped.
type Problem struct {
	Release string `json:"release"`
	Path    string `json:"path"`
	Reason  string `json:"reason"`
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// Errors callers distinguish.
var (
	ErrExists      = errors.New("already installed")
	ErrNotFound    = errors.New("not installed")
	ErrWrongKernel = errors.New("built for another kernel")
	ErrNotPatch    = errors.New("not a livepatch module")
)

func (s *Store) dir(release string) string { return filepath.Join(s.Root, release) }

// Path returns the absolute path of an entry's module file.
func (s *Store) Path(release string, e Entry) string {
	return filepath.Join(s.dir(release), e.File)
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid patch name %q", name)
	}
	return nil
}

func validRelease(rel string) error {
	if rel == "" || strings.ContainsAny(rel, "/\x00 ") || strings.HasPrefix(rel, ".") {
		return fmt.Errorf("invalid kernel release %q", rel)
	}
	return nil
}

// InstallOptions tune Install.
type InstallOptions struct {
	// Force replaces an installed patch of the same name and lifts its
	// quarantine, unless KeepQuarantine is set.
	Force          bool
	KeepQuarantine bool
	// Replace records that the patch is cumulative (atomic replace), so
	// patches installed before it need not be loaded. Modules built by kelp
	// say so themselves in .modinfo.
	Replace bool
}

// Install copies the module at path into the store for release.
func (s *Store) Install(release, path string, opts InstallOptions) (Entry, error) {
	if err := validRelease(release); err != nil {
		return Entry{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Entry{}, err
	}
	if st, _ := os.Stat(path); st != nil && st.IsDir() {
		return Entry{}, fmt.Errorf("%s: is a directory", path)
	}
	m, err := kmod.Parse(data)
	if err != nil {
		return Entry{}, fmt.Errorf("%s: %w", path, err)
	}
	if m.Name == "" {
		m.Name = kmod.NameFromFile(path)
	}
	if !m.Livepatch {
		return Entry{}, fmt.Errorf("%s: %w (no livepatch=Y in .modinfo)", path, ErrNotPatch)
	}
	if got := kmod.Release(m.Vermagic); got != release {
		return Entry{}, fmt.Errorf("%s: %w: vermagic names %s, not %s", path, ErrWrongKernel, got, release)
	}
	if err := validName(m.Name); err != nil {
		return Entry{}, err
	}
	sum := sha256.Sum256(data)
	e := Entry{
		Name:     m.Name,
		File:     filepath.Join("patches", m.Name+".ko"),
		SHA256:   hex.EncodeToString(sum[:]),
		Vermagic: m.Vermagic,
		Replace:  opts.Replace || isReplace(m),
	}
	err = s.locked(release, func() error {
		idx, err := s.readIndex(release)
		if err != nil {
			return err
		}
		pos := -1
		for i, old := range idx.Patches {
			if old.Name == e.Name {
				pos = i
			}
		}
		if pos >= 0 && !opts.Force {
			return fmt.Errorf("patch %s: %w for %s (use --force to replace it)", e.Name, ErrExists, release)
		}
		if err := atomicfile.WriteFile(s.Path(release, e), data, 0o644); err != nil {
			return fmt.Errorf("install %s: %w", e.Name, err)
		}
		idx.NextSeq++
		e.Seq = idx.NextSeq
		e.Installed = s.Now().UTC().Truncate(time.Second)
		if pos >= 0 {
			idx.Patches = append(idx.Patches[:pos], idx.Patches[pos+1:]...)
		}
		idx.Patches = append(idx.Patches, e)
		if err := s.writeIndex(release, idx); err != nil {
			return fmt.Errorf("install %s: %w", e.Name, err)
		}
		if opts.Force && !opts.KeepQuarantine {
			os.Remove(s.quarantinePath(release, e.Name))
		}
		return nil
	})
	return e, err
}

// isReplace reads the cumulative-patch flag kelp build writes to .modinfo.
func isReplace(m *kmod.Module) bool {
	v := m.Info["kelp.replace"]
	return len(v) > 0 && v[0] == "Y"
}

// Uninstall removes an installed patch (and its quarantine and marks).
func (s *Store) Uninstall(release, name string) error {
	if err := validRelease(release); err != nil {
		return err
	}
	if _, err := os.Stat(s.dir(release)); errors.Is(err, os.ErrNotExist) {
		// Nothing is installed for release: nothing to lock or create.
		return fmt.Errorf("patch %s: %w for %s", name, ErrNotFound, release)
	}
	return s.locked(release, func() error {
		idx, err := s.readIndex(release)
		if err != nil {
			return err
		}
		pos := -1
		for i, e := range idx.Patches {
			if e.Name == name {
				pos = i
			}
		}
		if pos < 0 {
			return fmt.Errorf("patch %s: %w for %s", name, ErrNotFound, release)
		}
		e := idx.Patches[pos]
		idx.Patches = append(idx.Patches[:pos], idx.Patches[pos+1:]...)
		// The index goes first: a crash after it leaves an orphan file,
		// which is reported and ignored, never a listed patch without file.
		if err := s.writeIndex(release, idx); err != nil {
			return fmt.Errorf("uninstall %s: %w", name, err)
		}
		os.Remove(s.Path(release, e))
		os.Remove(s.quarantinePath(release, name))
		os.Remove(s.markPath(release, name))
		return atomicfile.SyncDir(filepath.Join(s.dir(release), "patches"))
	})
}

// List returns the usable patches installed for release in install order,
// and the problems found (damaged or leftover files), which are skipped.
func (s *Store) List(release string) ([]Entry, []Problem, error) {
	if err := validRelease(release); err != nil {
		return nil, nil, err
	}
	idx, err := s.readIndex(release)
	if err != nil {
		var pe *indexError
		if errors.As(err, &pe) {
			return nil, []Problem{{Release: release, Path: pe.path, Reason: pe.msg + "; nothing in this store is loaded"}}, nil
		}
		return nil, nil, err
	}
	var ok []Entry
	var problems []Problem
	listed := map[string]bool{}
	for _, e := range idx.Patches {
		listed[filepath.Base(e.File)] = true
		data, err := os.ReadFile(s.Path(release, e))
		switch {
		case err != nil:
			problems = append(problems, Problem{release, s.Path(release, e), "listed but unreadable (" + errText(err) + "), ignored"})
		case hexSum(data) != e.SHA256:
			problems = append(problems, Problem{release, s.Path(release, e), "content does not match the recorded digest (interrupted or tampered install), ignored"})
		default:
			ok = append(ok, e)
		}
	}
	files, _ := os.ReadDir(filepath.Join(s.dir(release), "patches"))
	for _, f := range files {
		if listed[f.Name()] {
			continue
		}
		reason := "not in the index (interrupted install or removal), ignored"
		if strings.HasSuffix(f.Name(), ".tmp") {
			reason = "leftover of an interrupted write, ignored"
		}
		problems = append(problems, Problem{release, filepath.Join(s.dir(release), "patches", f.Name()), reason})
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].Seq < ok[j].Seq })
	return ok, problems, nil
}

// Releases lists the kernel releases that have a store directory.
func (s *Store) Releases() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && validRelease(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// LoadSet returns the entries that must be loaded to reach the installed
// state: everything from the newest cumulative (replace) patch onwards,
// since loading that one drops all earlier ones anyway.
func LoadSet(entries []Entry) []Entry {
	start := 0
	for i, e := range entries {
		if e.Replace {
			start = i
		}
	}
	return entries[start:]
}

type indexError struct {
	path, msg string
}

func (e *indexError) Error() string { return e.path + ": " + e.msg }

func (s *Store) indexPath(release string) string { return filepath.Join(s.dir(release), "index.json") }

func (s *Store) readIndex(release string) (*index, error) {
	p := s.indexPath(release)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &index{Version: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var idx index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, &indexError{p, "damaged index (" + err.Error() + ")"}
	}
	if idx.Version != 1 {
		return nil, &indexError{p, fmt.Sprintf("index version %d is not supported by this kelp", idx.Version)}
	}
	seen := map[string]bool{}
	for _, e := range idx.Patches {
		if err := validName(e.Name); err != nil {
			return nil, &indexError{p, "damaged index (" + err.Error() + ")"}
		}
		if seen[e.Name] {
			return nil, &indexError{p, fmt.Sprintf("damaged index (patch %q listed twice)", e.Name)}
		}
		seen[e.Name] = true
		// A module file is always patches/<name>.ko: the index never sends
		// kelp to a file outside the store.
		if e.File != filepath.Join("patches", e.Name+".ko") {
			return nil, &indexError{p, fmt.Sprintf("damaged index (patch %q has file %q, want patches/%s.ko)", e.Name, e.File, e.Name)}
		}
	}
	return &idx, nil
}

func (s *Store) writeIndex(release string, idx *index) error {
	idx.Version = 1
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.indexPath(release), append(data, '\n'), 0o644)
}

// locked runs fn holding the release directory's lock.
func (s *Store) locked(release string, fn func() error) error {
	dir := s.dir(release)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := sys.Lock(f); err != nil {
		return err
	}
	defer sys.Unlock(f)
	return fn()
}

func hexSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// errText is an error's message without the path os errors repeat.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
