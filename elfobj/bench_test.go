package elfobj

import (
	"os"
	"runtime"
	"testing"
)

// BenchmarkReadWrite measures Parse, Encode and both on kernel/sched/core.o,
// on the largest object of the kernel set, and on the whole set. Besides
// time it reports MB/s (b.SetBytes) and allocations per MB of input.
func BenchmarkReadWrite(b *testing.B) {
	objs := kernelObjects(b)
	var set [][]byte
	var core, largest []byte
	largestName := ""
	for _, o := range objs {
		d, err := os.ReadFile(o.Path)
		if err != nil {
			b.Fatal(err)
		}
		set = append(set, d)
		if o.Name == "kernel/sched/core.o" {
			core = d
		}
		if len(d) > len(largest) {
			largest, largestName = d, o.Name
		}
	}
	b.Logf("largest object: %s (%d bytes)", largestName, len(largest))
	for _, c := range []struct {
		name string
		objs [][]byte
	}{
		{"core.o", [][]byte{core}},
		{"largest", [][]byte{largest}},
		{"set", set},
	} {
		b.Run(c.name+"/read", func(b *testing.B) { benchObjects(b, c.objs, true, false) })
		b.Run(c.name+"/write", func(b *testing.B) { benchObjects(b, c.objs, false, true) })
		b.Run(c.name+"/read+write", func(b *testing.B) { benchObjects(b, c.objs, true, true) })
	}
}

func benchObjects(b *testing.B, objs [][]byte, read, write bool) {
	total := 0
	parsed := make([]*File, len(objs))
	for i, d := range objs {
		total += len(d)
		f, err := Parse(d)
		if err != nil {
			b.Fatal(err)
		}
		parsed[i] = f
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		for i, d := range objs {
			f := parsed[i]
			if read {
				var err error
				if f, err = Parse(d); err != nil {
					b.Fatal(err)
				}
			}
			if write {
				if _, err := f.Encode(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	runtime.ReadMemStats(&after)
	mb := float64(total) / (1 << 20) * float64(b.N)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/mb, "allocs/MB")
}
