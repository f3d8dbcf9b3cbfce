package livepatch

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/kmod"
)

func fakeLivepatch(files map[string]string) map[string]string {
	out := capable()
	for k, v := range files {
		out[k] = v
	}
	return out
}

// TestList reads patches, objects, functions and ownership from a fake
// sysfs: two stacked patches on cmdline_proc_show, a patch for a module
// that is not loaded, and a livepatch module left after a replace.
func TestList(t *testing.T) {
	s := fakeSystem(t, fakeLivepatch(map[string]string{
		"proc/modules": "b 16384 1 - Live 0xffffffffc0300000 (OEK)\n" +
			"left 16384 0 - Live 0xffffffffc0280000 (OEK)\n" +
			"a 16384 1 - Live 0xffffffffc0200000 (OEK)\n" +
			"ext4 999424 1 - Live 0xffffffffc0100000\n",
		"sys/kernel/livepatch/a/enabled":                      "1\n",
		"sys/kernel/livepatch/a/transition":                   "0\n",
		"sys/kernel/livepatch/a/vmlinux/patched":              "1\n",
		"sys/kernel/livepatch/a/vmlinux/cmdline_proc_show,1/": "",
		"sys/kernel/livepatch/a/vmlinux/meminfo_proc_show,1/": "",
		"sys/kernel/livepatch/b/enabled":                      "1\n",
		"sys/kernel/livepatch/b/transition":                   "0\n",
		"sys/kernel/livepatch/b/vmlinux/patched":              "1\n",
		"sys/kernel/livepatch/b/vmlinux/cmdline_proc_show,1/": "",
		"sys/kernel/livepatch/b/mymod/patched":                "0\n",
		"sys/kernel/livepatch/b/mymod/my_func,2/":             "",
		"sys/module/b/srcversion":                             "ABCDEF\n",
	}))
	l, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{l.Patches[0].Name, l.Patches[1].Name}; !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("patches newest first = %v", got)
	}
	if l.Patches[0].Srcversion != "ABCDEF" || l.Patches[0].Module == nil || l.Patches[0].Module.Refcount != 1 {
		t.Errorf("patch b = %+v", l.Patches[0])
	}
	if len(l.Leftovers) != 1 || l.Leftovers[0].Name != "left" {
		t.Errorf("leftovers = %+v", l.Leftovers)
	}
	want := []Ownership{
		{Object: "mymod", Function: "my_func", Sympos: 2, State: FuncNotLoaded, Stack: []string{"b"}},
		{Object: "vmlinux", Function: "cmdline_proc_show", Sympos: 1, Owner: "b", State: FuncPatched, Stack: []string{"b", "a"}},
		{Object: "vmlinux", Function: "meminfo_proc_show", Sympos: 1, Owner: "a", State: FuncPatched, Stack: []string{"a"}},
	}
	if !reflect.DeepEqual(l.Functions, want) {
		t.Errorf("ownership:\n got %+v\nwant %+v", l.Functions, want)
	}
	if l.Transition != nil {
		t.Errorf("transition = %+v, want none", l.Transition)
	}
}

// TestOwnershipTransitions: who runs during patching and unpatching
// transitions of the top patch.
func TestOwnershipTransitions(t *testing.T) {
	obj := func(fns ...string) []Object {
		o := Object{Name: "vmlinux", Patched: true}
		for _, f := range fns {
			o.Funcs = append(o.Funcs, Func{Name: f, Sympos: 1})
		}
		return []Object{o}
	}
	old := Patch{Name: "old", Enabled: true, Objects: obj("f", "g")}
	cases := []struct {
		name string
		top  Patch
		want Ownership
	}{
		{"patching", Patch{Name: "new", Enabled: true, Transition: true, Objects: obj("f")},
			Ownership{Object: "vmlinux", Function: "f", Sympos: 1, Owner: "new", Previous: "old", State: FuncTransition, Stack: []string{"new", "old"}}},
		{"unpatching", Patch{Name: "new", Enabled: false, Transition: true, Objects: obj("f")},
			Ownership{Object: "vmlinux", Function: "f", Sympos: 1, Owner: "old", Previous: "new", State: FuncTransition, Stack: []string{"new", "old"}}},
		{"being freed", Patch{Name: "new", Enabled: false, Objects: obj("f")},
			Ownership{Object: "vmlinux", Function: "f", Sympos: 1, Owner: "old", State: FuncPatched, Stack: []string{"new", "old"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Ownerships([]Patch{c.top, old})
			if !reflect.DeepEqual(got[0], c.want) {
				t.Errorf("f:\n got %+v\nwant %+v", got[0], c.want)
			}
			if g := got[1]; g.Function != "g" || g.Owner != "old" || g.State != FuncPatched {
				t.Errorf("g = %+v, want old's", g)
			}
		})
	}
	// Patching from the original: the unswitched tasks run the original.
	got := Ownerships([]Patch{{Name: "only", Enabled: true, Transition: true, Objects: obj("f")}})
	if got[0].Owner != "only" || got[0].Previous != "" || got[0].State != FuncTransition {
		t.Errorf("first patch in transition = %+v", got[0])
	}
}

func TestStackOrder(t *testing.T) {
	ps := []Patch{{Name: "a", StackOrder: 1}, {Name: "c", StackOrder: 3}, {Name: "b", StackOrder: 2}}
	// /proc/modules order says otherwise: stack_order wins where present.
	sortNewestFirst(ps, []Module{{Name: "a"}, {Name: "b"}, {Name: "c"}})
	if got := ps[0].Name + ps[1].Name + ps[2].Name; got != "cba" {
		t.Errorf("order = %s, want cba", got)
	}
}

func TestParseModules(t *testing.T) {
	ms := parseModules("lp 16384 1 - Live 0xffffffffc0200000 (OEK)\n" +
		"jbd2 196608 1 ext4, Live 0xffffffffc0100000\n" +
		"going 4096 0 - Unloading 0x0 (O)\n")
	if len(ms) != 3 || !ms[0].Livepatch() || ms[1].Livepatch() || ms[1].UsedBy[0] != "ext4" || ms[2].State != "Unloading" {
		t.Errorf("parseModules = %+v", ms)
	}
}

func TestPatchTransitionState(t *testing.T) {
	s := fakeSystem(t, fakeLivepatch(map[string]string{
		"sys/kernel/livepatch/p/enabled":    "0\n",
		"sys/kernel/livepatch/p/transition": "1\n",
		"sys/kernel/livepatch/p/replace":    "1\n",
		"proc/10/task/10/patch_state":       "0\n",
		"proc/10/task/11/patch_state":       "1\n",
		"proc/12/task/12/patch_state":       "1\n",
		"proc/12/task/12/comm":              "kworker/0:1\n",
		"proc/12/task/12/stat":              "12 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
		"proc/12/task/12/stack":             "[<0>] msleep+0x29/0x40\n[<0>] busymod_work_func+0x38/0x4d [busy]\n[<0>] process_one_work+0x1c7/0x380\n",
	}))
	p, err := s.Patch("p")
	if err != nil {
		t.Fatal(err)
	}
	if p.Target() != Unpatched || !p.Transition || p.Replace == nil || !*p.Replace {
		t.Errorf("patch = %+v", p)
	}
	sc := s.scanTasks(Unpatched)
	if sc.Total != 3 || sc.Switched != 1 || len(sc.Pending) != 2 {
		t.Fatalf("scan = %+v", sc)
	}
	bl := s.describeTasks(sc.Pending)
	k := bl[len(bl)-1]
	if k.TID != 12 || k.Comm != "kworker/0:1" || !k.Kernel || k.BlockingFrame() != "busymod_work_func" {
		t.Errorf("blocker = %+v (frame %q)", k, k.BlockingFrame())
	}
	if got := blockerSummary(bl[1:]); got != "1 blocking task: kworker/0:1 pid 12 in busymod_work_func" {
		t.Errorf("summary = %q", got)
	}
	if _, err := s.Patch("nosuch"); err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("Patch(nosuch) = %v", err)
	}
}

func TestKmsgRecord(t *testing.T) {
	msg, usec, ok := parseKmsgRecord([]byte("5,1234,5678901,-;livepatch: 'p': patching complete\n SUBSYSTEM=x\n"))
	if !ok || msg != "livepatch: 'p': patching complete" || usec != 5678901 {
		t.Errorf("parse = %q %d %v", msg, usec, ok)
	}
	if got := unescapeKmsg(`a\x0ab`); got != "a\nb" {
		t.Errorf("unescape = %q", got)
	}
	lines := []string{"livepatch: enabling patch 'p'", "p: pre_patch_callback: vmlinux", "livepatch: pre-patch callback failed for object 'vmlinux'", "livepatch: failed to enable patch 'p'"}
	if got := hintLine(lines); got != lines[2] {
		t.Errorf("hint = %q", got)
	}
}

func TestTimeoutAction(t *testing.T) {
	for _, s := range []string{"revert", "wait", "force"} {
		a, err := ParseTimeoutAction(s)
		if err != nil || a.String() != s {
			t.Errorf("ParseTimeoutAction(%q) = %v, %v", s, a, err)
		}
	}
	if _, err := ParseTimeoutAction("later"); err == nil {
		t.Error("ParseTimeoutAction(later) succeeded")
	}
}

func TestPatchName(t *testing.T) {
	for in, want := range map[string]string{"livepatch-sample": "livepatch_sample", "/root/x-y.ko": "x_y", "test_klp": "test_klp"} {
		if got := PatchName(in); got != want {
			t.Errorf("PatchName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLateRelocationWarning(t *testing.T) {
	m := &kmod.Module{Name: "fix", KlpObjects: []string{"vmlinux", "ext4"}}
	if ws := lateRelocationWarnings(m, "6.1.0-56-amd64"); len(ws) != 1 || !strings.Contains(ws[0], "ext4 cannot be loaded again") {
		t.Errorf("6.1 warnings = %q", ws)
	}
	if ws := lateRelocationWarnings(m, "6.3.0"); len(ws) != 0 {
		t.Errorf("6.3 warnings = %q", ws)
	}
}
