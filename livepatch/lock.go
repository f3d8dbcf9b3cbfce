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
