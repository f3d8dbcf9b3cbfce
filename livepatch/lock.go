package livepatch

import (
	"os"

	"github.com/kelp-project/kelp/internal/sys"
)

// lock serializes kelp's checks-then-act sections (pre-flight + load,
// disable) between concurrent kelp processes, so two loads cannot both see
// "no transition" and race. The kernel would refuse the loser with EBUSY;
// the lock turns that into a clear pre-flight refusal. It is held for
// milliseconds, never while a transition is watched. When the lock file
// cannot be created (read-only /run) kelp goes on without it.
func (s System) lock() func() {
	dir := s.path("run")
	f, err := os.OpenFile(dir+"/kelp.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := sys.Lock(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		sys.Unlock(f)
		f.Close()
	}
}

// unloading marks patch name as being unloaded by this process for as
// long as the unload runs (its transition watched, its module removed):
// a second kelp unload of the same patch meanwhile is refused instead of
// racing the first to remove the module. busy is true when another
// process holds the mark. A mark left by a process that died is released
// with it (an advisory lock), so a later kelp unload can finish the job.
func (s System) unloading(name string) (release func(), busy bool) {
	path := s.path("run", "kelp-unload-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}, false
	}
	ok, err := sys.TryLock(f)
	if err != nil {
		f.Close()
		return func() {}, false
	}
	if !ok {
		f.Close()
		return nil, true
	}
	return func() {
		os.Remove(path) // nothing left behind in /run
		sys.Unlock(f)
		f.Close()
	}, false
}
