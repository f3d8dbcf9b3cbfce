package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var heapSink []byte

// TestStartingHeap: the heap grows to the starting size without a
// collection pacing it, the first collection restores the default
// pacing (GOGC=100, no memory limit), and a GOGC the user sets stands.
func TestStartingHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	startingHeap(16 << 20)
	if got := debug.SetMemoryLimit(-1); got != 16<<20 {
		t.Fatalf("memory limit %d after startingHeap; want %d", got, 16<<20)
	}
	// Past the starting size the collector runs, and then paces itself
	// as by default.
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatal("the default pacing is not restored after collections")
		}
		for range 64 {
			heapSink = make([]byte, 1<<20)
		}
		runtime.Gosched()
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d after the first collection; want 100", got)
	}

	t.Setenv("GOGC", "200")
	startingHeap(16 << 20)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d with GOGC set; want none", got)
	}
}
