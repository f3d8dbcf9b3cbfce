package proto

import (
	"sort"
	"strings"
	"testing"
)

// FuzzParseModuleDeps: for every module a modules.dep names, LoadOrder
// lists each file once, every dependency before the module that needs it,
// and terminates on cycles.
func FuzzParseModuleDeps(f *testing.F) {
	f.Add("kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\nkernel/lib/crc16.ko:\n")
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Add("x.ko.xz: y.ko\n\nbad line\n")
	f.Fuzz(func(t *testing.T, text string) {
		md, err := ParseModuleDeps(strings.NewReader(text))
		if err != nil {
			return
		}
		names := make([]string, 0, len(md.files))
		for n := range md.files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			order, err := md.LoadOrder([]string{md.files[n]})
			if err != nil {
				t.Fatalf("module %s from modules.dep: %v", n, err)
			}
			pos := map[string]int{}
			for i, file := range order {
				if _, dup := pos[file]; dup {
					t.Fatalf("%s: %s listed twice in %v", n, file, order)
				}
				pos[file] = i
			}
			if order[len(order)-1] != md.files[n] {
				t.Fatalf("%s: its own file %s is not last in %v", n, md.files[n], order)
			}
			for _, file := range order {
				for _, dep := range md.deps[file] {
					if pos[dep] > pos[file] && !reaches(md, dep, file) {
						t.Fatalf("%s: %s needs %s, loaded after it", n, file, dep)
					}
				}
			}
		}
	})
}

// reaches reports whether file from depends on file to (a cycle makes
// some order unavoidable).
func reaches(md *ModuleDeps, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(f string) bool {
		if f == to {
			return true
		}
		if seen[f] {
			return false
		}
		seen[f] = true
		for _, d := range md.deps[f] {
			if walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}
