package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
)

// startingHeap lets the heap grow to size before the first garbage
// collection, after which the collector paces itself as by default
// (GOGC=100). A build reads most of what it keeps (the module lists, the
// tree's records, the symbol table) in its first milliseconds, where the
// default 4 MiB start collects again and again, on the core the compiler
// runs on. A GOGC or GOMEMLIMIT the user sets stands.
func startingHeap(size int64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(size)
	// The first collection frees the sentinel; its cleanup restores the
	// default pacing.
	sentinel := &struct {
		p *byte
		_ [64]byte
	}{}
	runtime.AddCleanup(sentinel, func(struct{}) {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}, struct{}{})
}
