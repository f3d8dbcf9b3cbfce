package vmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
)

// Guests running at once are limited machine-wide, across every process
// (go test runs packages in parallel): TCG guests on a few cores starve one
// another, and a starved guest can stall in early boot. A slot is an
// advisory lock on one of N files; the kernel drops it when the holder dies.

// slotDir holds the slot files; shared by every user of the machine.
var slotDir = filepath.Join(os.TempDir(), "kelp-vm-slots")

// Slots returns how many guests may run at once: KELP_VM_SLOTS, or one per
// two CPUs (at least one).
func Slots() (int, error) {
	if v := os.Getenv("KELP_VM_SLOTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("vm: KELP_VM_SLOTS=%q: want a positive number", v)
		}
		return n, nil
	}
	return max(1, runtime.NumCPU()/2), nil
}

// acquireSlot waits for a free guest slot and returns its release. logf,
// when set, hears once that the boot waits.
func acquireSlot(ctx context.Context, logf func(string, ...any)) (func(), error) {
	n, err := Slots()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(slotDir, 0o777); err != nil {
		return nil, fmt.Errorf("vm: guest slots: %w", err)
	}
	os.Chmod(slotDir, 0o777|os.ModeSticky)
	start := time.Now()
	told := false
	for {
		for i := range n {
			f, err := os.OpenFile(filepath.Join(slotDir, fmt.Sprintf("slot-%d", i)), os.O_RDWR|os.O_CREATE, 0o666)
			if err != nil {
				return nil, fmt.Errorf("vm: guest slots: %w", err)
			}
			ok, err := sys.TryLock(f)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("vm: guest slots: %w", err)
			}
			if ok {
				if told && logf != nil {
					logf("vm: got a guest slot after %s", time.Since(start).Round(time.Second))
				}
				return func() { sys.Unlock(f); f.Close() }, nil
			}
			f.Close()
		}
		if !told && logf != nil {
			logf("vm: waiting for a guest slot (%d in use machine-wide; KELP_VM_SLOTS sets the limit)", n)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("vm: waiting for a guest slot: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
