package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPlanBoots(t *testing.T) {
	// Modules and their files in load order; sizes in MiB.
	deps := map[string][]string{
		"a":    {"kernel/lib/common.ko", "kernel/a.ko"},
		"b":    {"kernel/lib/common.ko", "kernel/b.ko"},
		"c":    {"kernel/c.ko"},
		"huge": {"kernel/huge.ko"},
	}
	sizes := map[string]int64{"kernel/lib/common.ko": 40, "kernel/a.ko": 50, "kernel/b.ko": 30, "kernel/c.ko": 90, "kernel/huge.ko": 300}
	shipped := map[string]bool{"a": true, "b": true, "c": true, "huge": true}
	dep := func(m string) ([]string, error) {
		d, ok := deps[m]
		if !ok {
			return nil, fmt.Errorf("no module %s", m)
		}
		return d, nil
	}
	size := func(rel string) int64 { return sizes[rel] << 20 }
	outs := []Outcome{
		{Module: "p0", Build: BuildOK, Objects: []string{"vmlinux"}},
		{Module: "p1", Build: BuildOK, Objects: []string{"a"}},
		{Module: "p2", Build: BuildRefused, Objects: []string{"c"}},
		{Module: "p3", Build: BuildOK, Objects: []string{"b", "a"}}, // adds only b.ko: common is there
		{Module: "p4", Build: BuildOK, Objects: []string{"c"}},      // 120+90 > 200: a new boot
		{Module: "p5", Build: BuildOK, Objects: []string{"huge"}},   // alone over the budget
		{Module: "p6", Build: BuildOK, Objects: []string{"vmlinux", "notshipped"}},
		{Module: "p7", Build: BuildOK, Objects: []string{"a"}},
	}
	boots, left, err := planBoots(outs, shipped, 200<<20, dep, size)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Outcomes []int
		Targets  []string
		Files    []string
		MiB      int64
	}
	var g []got
	for _, b := range boots {
		g = append(g, got{b.Outcomes, b.Targets, b.Files, b.Size >> 20})
		if b.Size > 200<<20 {
			t.Errorf("boot %v carries %d MiB, over the budget", b.Outcomes, b.Size>>20)
		}
		for _, tg := range b.Targets {
			if !b.InGuest[tg] {
				t.Errorf("boot %v: target %s not in InGuest", b.Outcomes, tg)
			}
		}
		if len(b.InGuest) != len(b.Targets) {
			t.Errorf("boot %v: InGuest %v, Targets %v", b.Outcomes, b.InGuest, b.Targets)
		}
	}
	want := []got{
		{[]int{0, 1, 3}, []string{"a", "b"}, []string{"kernel/lib/common.ko", "kernel/a.ko", "kernel/b.ko"}, 120},
		{[]int{4}, []string{"c"}, []string{"kernel/c.ko"}, 90},
		{[]int{5, 6, 7}, []string{"a"}, []string{"kernel/lib/common.ko", "kernel/a.ko"}, 90},
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("boots:\n got %+v\nwant %+v", g, want)
	}
	if len(left) != 1 || !strings.Contains(left[0], "p5: its modules huge") || !strings.Contains(left[0], "(300 MiB) exceed") {
		t.Errorf("left out: %q, want p5's huge named", left)
	}

	// Every built outcome is in exactly one boot.
	seen := map[int]int{}
	for _, b := range boots {
		for _, i := range b.Outcomes {
			seen[i]++
		}
	}
	for i, o := range outs {
		if n := seen[i]; (o.Build == BuildOK) != (n == 1) || n > 1 {
			t.Errorf("outcome %d (%s): in %d boots", i, o.Build, n)
		}
	}

	if _, _, err := planBoots([]Outcome{{Module: "x", Build: BuildOK, Objects: []string{"a"}}}, map[string]bool{"a": true}, 1<<30,
		func(string) ([]string, error) { return nil, fmt.Errorf("modules.dep: no a") }, size); err == nil || !strings.Contains(err.Error(), "no a") {
		t.Errorf("a dependency error: got %v", err)
	}
	if b, l, err := planBoots(nil, shipped, 1<<30, dep, size); err != nil || len(b) != 0 || len(l) != 0 {
		t.Errorf("no outcomes: %v %v %v", b, l, err)
	}
}

func TestSoftDeps(t *testing.T) {
	softdep := "# Soft dependencies extracted from modules themselves.\n" +
		"softdep libcrc32c pre: crc32c\n" +
		"softdep ext4 pre: crypto-crc32c\n" +
		"softdep cifs gcm\n" +
		"softdep nfsd pre: crypto-md5 post: sha256\n" +
		"softdep other pre: crc32c\n"
	alias := "alias crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\nalias crypto-md5 md5\n"
	shipped := map[string]bool{"crc32c_intel": true, "crc32c_generic": true, "libcrc32c": true, "ext4": true, "nfsd": true, "sha256": true, "gcm": true}
	for _, c := range []struct {
		mods []string
		want []string
	}{
		{[]string{"libcrc32c", "nf_tables"}, []string{"crc32c_generic", "crc32c_intel"}},
		{[]string{"ext4"}, []string{"crc32c_generic"}},
		{[]string{"nfsd"}, nil},      // md5 is built in (not shipped); sha256 is post:
		{[]string{"cifs"}, nil},      // no pre:
		{[]string{"unrelated"}, nil}, // no line of its own
		{[]string{"libcrc32c", "crc32c_intel"}, []string{"crc32c_generic"}},
	} {
		if got := softDeps(softdep, alias, shipped, c.mods); !slices.Equal(got, c.want) {
			t.Errorf("softDeps(%q) = %q, want %q", c.mods, got, c.want)
		}
	}
}
