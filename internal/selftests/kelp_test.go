package selftests

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/livepatch"
)

// check is one guest step and what must hold of its result.
type check struct {
	name  string
	shell string
	test  func(t *testing.T, r vmtest.StepResult)
}

// wantExit asserts the exit code and, for a failure, that kelp said why
// in exactly one line on stderr containing every want.
// waitedAtLeast checks that text reports, after prefix, a wait of at least
// min seconds ("... after 3.02s"): kelp reports the time it really waited,
// later than its timeout on a loaded machine, never earlier.
func waitedAtLeast(t *testing.T, text, prefix string, min float64) {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(prefix) + `([0-9]+(?:\.[0-9]+)?)s`).FindStringSubmatch(text)
	if m == nil {
		t.Errorf("no %q<seconds>s in:\n%s", prefix, text)
		return
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < min {
		t.Errorf("reported a wait of %ss, want at least %gs", m[1], min)
	}
}

func wantExit(code int, want ...string) func(*testing.T, vmtest.StepResult) {
	return func(t *testing.T, r vmtest.StepResult) {
		t.Helper()
		if r.Exit != code || r.Error != "" {
			t.Fatalf("exit %d%s, want %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Error, code, r.Stdout, r.Stderr)
		}
		out := r.Stderr
		if code != 0 {
			lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
			out = lines[len(lines)-1]
			if !strings.HasPrefix(out, "kelp: ") {
				t.Errorf("last stderr line %q does not say why", out)
			}
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("stderr lacks %q:\n%s", w, out)
			}
		}
	}
}

// refused asserts a pre-flight refusal: exit 1, stderr exactly one line
// "kelp: ..." containing every want, nothing on stdout.
func refused(want ...string) func(*testing.T, vmtest.StepResult) {
	return func(t *testing.T, r vmtest.StepResult) {
		t.Helper()
		if r.Exit != 1 {
			t.Fatalf("exit %d, want 1 (refused)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
		}
		if strings.Count(r.Stderr, "\n") != 1 || !strings.HasPrefix(r.Stderr, "kelp: ") || r.Stdout != "" {
			t.Errorf("a refusal must be one line on stderr and nothing on stdout, got stdout %q stderr %q", r.Stdout, r.Stderr)
		}
		for _, w := range want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("refusal %q lacks %q", strings.TrimSpace(r.Stderr), w)
			}
		}
	}
}

func stdoutIs(want string) func(*testing.T, vmtest.StepResult) {
	return func(t *testing.T, r vmtest.StepResult) {
		t.Helper()
		if r.Exit != 0 || strings.TrimSpace(r.Stdout) != want {
			t.Errorf("exit %d, stdout %q, want %q\nstderr:\n%s", r.Exit, strings.TrimSpace(r.Stdout), want, r.Stderr)
		}
	}
}

func listing(t *testing.T, r vmtest.StepResult) *livepatch.Listing {
	t.Helper()
	if r.Exit != 0 {
		t.Fatalf("kelp list --json: exit %d\n%s", r.Exit, r.Stderr)
	}
	var l livepatch.Listing
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		t.Fatalf("kelp list --json: %v\n%s", err, r.Stdout)
	}
	return &l
}

func owner(l *livepatch.Listing, fn string) *livepatch.Ownership {
	for i := range l.Functions {
		if l.Functions[i].Function == fn {
			return &l.Functions[i]
		}
	}
	return nil
}

func patchNames(l *livepatch.Listing) string {
	var n []string
	for _, p := range l.Patches {
		n = append(n, p.Name)
	}
	return strings.Join(n, ",")
}

// clean is a shell check that nothing is left: no patch, no test module.
const clean = `[ -z "$(ls /sys/kernel/livepatch)" ] && ! grep -E '^(test_klp|livepatch_sample)' /proc/modules`

// TestKelpCommands exercises kelp's commands in one boot: bad inputs
// refused before anything is loaded, a stalled transition timed out and
// reverted with its blocker named, a second load refused during a
// transition, force, stacked patches and atomic replace in kelp list,
// unload --all, info and --json.
func TestKelpCommands(t *testing.T) {
	b := modules(t)
	lpKO, err := os.ReadFile(b.ko[lp])
	if err != nil {
		t.Fatal(err)
	}
	// A livepatch whose vermagic names another kernel of the same length.
	other := otherRelease(b.kernel.Release)
	wrong := bytes.Replace(lpKO, []byte("vermagic="+b.kernel.Release), []byte("vermagic="+other), 1)
	if bytes.Equal(wrong, lpKO) {
		t.Fatal("vermagic not found in test_klp_livepatch.ko")
	}
	random := make([]byte, 8192)
	for i := range random {
		random[i] = byte(i*2654435761>>13) ^ byte(i)
	}
	files := append(b.files(),
		vmtest.File{Path: "/root/bad/wrong-vermagic.ko", Data: wrong},
		vmtest.File{Path: "/root/bad/truncated.ko", Data: lpKO[:len(lpKO)/2]},
		vmtest.File{Path: "/root/bad/random.ko", Data: random},
	)

	const demoKO = guestKO + "/" + demo + ".ko"
	const lpPath = guestKO + "/" + lp + ".ko"
	const snapshot = `snapshot() { cat /proc/modules; ls /sys/kernel/livepatch; cat /proc/sys/kernel/tainted; }`
	checks := []check{
		{"setup", setupStep + snapshot + "\nsnapshot > /tmp/before", wantExit(0)},

		// Bad inputs: each refused before loading, one line, nothing changed.
		{"bad: not a livepatch", "kelp load " + guestKO + "/" + target + ".ko", refused(target + ".ko: module " + target + " is not a livepatch module")},
		{"bad: other kernel", "kelp load /root/bad/wrong-vermagic.ko", refused("built for kernel " + other + ", but the running kernel is " + b.kernel.Release)},
		{"bad: truncated", "kelp load /root/bad/truncated.ko", refused("/root/bad/truncated.ko: not a kernel module: truncated ELF file")},
		{"bad: random bytes", "kelp load /root/bad/random.ko", refused("/root/bad/random.ko: not a kernel module: not an ELF file")},
		{"bad: directory", "mkdir -p /root/bad/dir.ko && kelp load /root/bad/dir.ko", refused("/root/bad/dir.ko: is a directory")},
		{"bad: missing", "kelp load /root/bad/missing.ko", refused("/root/bad/missing.ko: cannot read: no such file or directory")},
		{"bad: unknown parameter", "kelp load " + lpPath + " replace=1", refused("module " + lp + " takes no parameters")},
		{"bad: second file bad", "kelp load " + lpPath + " /root/bad/random.ko", refused("/root/bad/random.ko: not a kernel module")},
		{"bad: usage", "kelp load replace=1 " + lpPath, wantExit(64, "comes before any module file")},
		{"bad: nothing changed", snapshot + "\nsnapshot > /tmp/after && diff /tmp/before /tmp/after", wantExit(0)},

		// A transition stalled by a busy kworker: timed out, blocker
		// named with its stack, reverted, the patch module gone.
		{"stall: busy module", "insmod " + guestKO + "/" + busy + ".ko block_transition=Y", wantExit(0)},
		{"stall: load times out", "kelp load --timeout 5s " + demoKO, func(t *testing.T, r vmtest.StepResult) {
			wantExit(3, "patching transition timed out after ", "1 blocking task: kworker", "in busymod_work_func", "reverted, the patch is not applied")(t, r)
			waitedAtLeast(t, r.Stderr, "patching transition timed out after ", 5)
			for _, w := range []string{"1 task has not switched to the patched state", "(kernel thread), patch state unpatched", "busymod_work_func+0x", "reverting", "removing module " + demo} {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			t.Logf("stalled load, reverted:\n%s", r.Stderr)
		}},
		{"stall: system as before", `[ -z "$(ls /sys/kernel/livepatch)" ] && ! grep -q '^` + demo + ` ' /proc/modules`, wantExit(0)},

		// One transition at a time.
		{"transition: start", "kelp load --no-wait " + demoKO, func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			if !strings.Contains(r.Stdout, demo+": loaded in ") || !strings.Contains(r.Stdout, "patching transition under way") {
				t.Errorf("stdout %q", r.Stdout)
			}
		}},
		{"transition: second load refused", "kelp load " + lpPath, refused("patch "+demo+" is in transition (patching, ", "tasks switched)")},
		{"transition: list", "kelp list", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			t.Logf("kelp list during a stalled transition:\n%s", r.Stdout)
		}},
		{"transition: list json", "kelp list --json", func(t *testing.T, r vmtest.StepResult) {
			l := listing(t, r)
			if l.Transition == nil || l.Transition.Patch != demo || l.Transition.Target != livepatch.Patched || l.Transition.Switched >= l.Transition.Total {
				t.Errorf("transition = %+v, want %s patching, not all switched", l.Transition, demo)
			}
			o := owner(l, "busymod_work_func")
			if o == nil || o.State != livepatch.FuncTransition || o.Owner != demo || o.Previous != "" || o.Object != busy {
				t.Errorf("busymod_work_func ownership = %+v, want in transition from the original to %s", o, demo)
			}
		}},
		// A stalled transition is what an alert on kelp_transition_seconds
		// catches: its age comes from the kernel's log record.
		{"transition: metrics", "sleep 2; kelp status --prometheus /tmp/kelp.prom && cat /tmp/kelp.prom", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			if !strings.Contains(r.Stdout, "\nkelp_transition_in_progress 1\n") {
				t.Errorf("no kelp_transition_in_progress 1 in\n%s", r.Stdout)
			}
			m := regexp.MustCompile(`(?m)^kelp_transition_seconds (\S+)$`).FindStringSubmatch(r.Stdout)
			if m == nil {
				t.Fatalf("no kelp_transition_seconds in\n%s", r.Stdout)
			}
			if secs, err := strconv.ParseFloat(m[1], 64); err != nil || secs < 2 || secs > 600 {
				t.Errorf("kelp_transition_seconds %s, want the seconds since the transition started (at least the 2 s slept)", m[1])
			}
			if strings.Contains(r.Stdout, "kelp_patch_info{") {
				t.Errorf("a patch in transition counted as fixing:\n%s", r.Stdout)
			}
		}},
		{"transition: force needs --yes", "kelp force " + demo + " && exit 9; grep -q 1 /sys/kernel/livepatch/" + demo + "/transition", func(t *testing.T, r vmtest.StepResult) {
			if r.Exit != 0 || !strings.Contains(r.Stderr, "not forced") || !strings.Contains(r.Stderr, "--yes") {
				t.Errorf("kelp force without --yes: exit %d stderr %q", r.Exit, r.Stderr)
			}
		}},
		{"transition: unload reverses", "kelp unload " + demo + ` && [ -z "$(ls /sys/kernel/livepatch)" ]`, wantExit(0, "reversing the patching transition of "+demo)},

		// kelp force NAME --yes completes a stalled transition.
		{"force: start", "kelp load --no-wait " + demoKO, wantExit(0)},
		{"force: unknown patch", "kelp force " + lp + " --yes", refused(lp + ": no patch of that name is loaded")},
		{"force: forced", "kelp force " + demo + " --yes", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0, "warning: forcing switches every remaining task")(t, r)
			// The kworker at least; a task still on its way back to user
			// space may be counted too.
			if !strings.Contains(r.Stdout, demo+": patching transition completed by force (") || !strings.Contains(r.Stdout, " switched without a stack check)") {
				t.Errorf("stdout %q", r.Stdout)
			}
		}},
		{"force: patched", "cat /sys/kernel/livepatch/" + demo + "/enabled /sys/kernel/livepatch/" + demo + "/transition", stdoutIs("1\n0")},
		{"force: not in transition", "kelp force " + demo + " --yes", refused(demo + ": patch is not in transition: there is nothing to force")},
		{"force: unload", "kelp unload " + demo, wantExit(0)},
		// --on-timeout force --yes
		{"force: on timeout", "kelp load --timeout 2s --on-timeout force --yes " + demoKO, func(t *testing.T, r vmtest.StepResult) {
			wantExit(0, "1 task has not switched", "warning: forcing the transition")(t, r)
			if !strings.Contains(r.Stdout, demo+": patched by force") {
				t.Errorf("stdout %q", r.Stdout)
			}
		}},
		{"force: on timeout needs --yes", "kelp load --on-timeout force " + demoKO, wantExit(64, "--on-timeout force needs --yes")},
		{"force: cleanup", "kelp unload " + demo + " && rmmod " + busy + " && " + clean, wantExit(0)},

		// --on-timeout wait: blockers reported, then the wait goes on
		// until the blocker leaves the patched function.
		{"wait: busy module", "insmod " + guestKO + "/" + busy + ".ko block_transition=Y", wantExit(0)},
		{"wait: completes after the blocker leaves", "kelp load --timeout 2s --on-timeout wait " + demoKO + " >/tmp/wait.out 2>/tmp/wait.err & pid=$!\n" +
			"for i in $(seq 600); do grep -q 'still waiting' /tmp/wait.err && break; sleep 0.1; done\n" +
			"echo N > /sys/module/" + busy + "/parameters/block_transition\n" +
			"wait $pid; rc=$?; cat /tmp/wait.out; cat /tmp/wait.err >&2; exit $rc", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0, "1 task has not switched to the patched state after 2", "busymod_work_func", "still waiting for the transition (--on-timeout wait)")(t, r)
			if !strings.Contains(r.Stdout, demo+": patched in ") {
				t.Errorf("stdout %q", r.Stdout)
			}
		}},
		{"wait: cleanup", "kelp unload " + demo + " && rmmod " + busy + " && " + clean, wantExit(0)},

		// Two stacked patches on one function, then an atomic replace.
		{"stack: two patches", "kelp load " + lpPath + " " + guestKO + "/livepatch-sample.ko", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			if !strings.Contains(r.Stdout, lp+": patched in ") || !strings.Contains(r.Stdout, "livepatch_sample: patched in ") {
				t.Errorf("stdout %q", r.Stdout)
			}
			t.Logf("kelp load of two patches:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
		}},
		{"stack: list", "kelp list", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			t.Logf("kelp list with two stacked patches:\n%s", r.Stdout)
		}},
		{"stack: list json", "kelp list --json", func(t *testing.T, r vmtest.StepResult) {
			l := listing(t, r)
			if got := patchNames(l); got != "livepatch_sample,"+lp {
				t.Errorf("patches newest first = %s", got)
			}
			o := owner(l, "cmdline_proc_show")
			if o == nil || o.Owner != "livepatch_sample" || o.State != livepatch.FuncPatched || strings.Join(o.Stack, ",") != "livepatch_sample,"+lp {
				t.Errorf("cmdline_proc_show ownership = %+v, want livepatch_sample over %s", o, lp)
			}
		}},
		{"stack: the newest runs", "cat /proc/cmdline", stdoutIs("this has been live patched")},
		{"stack: unload the top", "kelp unload livepatch_sample >/dev/null && cat /proc/cmdline && kelp list --json", func(t *testing.T, r vmtest.StepResult) {
			first, rest, _ := strings.Cut(r.Stdout, "\n")
			if first != lp+": this has been live patched" {
				t.Errorf("/proc/cmdline after unloading the top patch = %q", first)
			}
			l := listing(t, vmtest.StepResult{Stdout: rest})
			if o := owner(l, "cmdline_proc_show"); o == nil || o.Owner != lp {
				t.Errorf("cmdline_proc_show ownership = %+v, want %s", o, lp)
			}
		}},
		{"stack: atomic replace", "kelp load " + guestKO + "/livepatch-sample.ko " + guestKO + "/" + replace + ".ko replace=1 >/dev/null && grep -c 'live patched' /proc/cmdline; kelp list --json", func(t *testing.T, r vmtest.StepResult) {
			first, rest, _ := strings.Cut(r.Stdout, "\n")
			if first != "0" {
				t.Errorf("after the atomic replace /proc/cmdline is still patched (%s)", first)
			}
			l := listing(t, vmtest.StepResult{Stdout: rest})
			if got := patchNames(l); got != replace {
				t.Errorf("patches after atomic replace = %s, want only %s", got, replace)
			}
			if o := owner(l, "cmdline_proc_show"); o != nil {
				t.Errorf("cmdline_proc_show still owned after the replace: %+v", o)
			}
			if o := owner(l, "meminfo_proc_show"); o == nil || o.Owner != replace {
				t.Errorf("meminfo_proc_show ownership = %+v", o)
			}
			var left []string
			for _, m := range l.Leftovers {
				left = append(left, m.Name)
			}
			if strings.Join(left, ",") != "livepatch_sample,"+lp {
				t.Errorf("leftover modules = %v", left)
			}
		}},
		{"stack: list after replace", "kelp list", func(t *testing.T, r vmtest.StepResult) {
			wantExit(0, "")(t, r)
			t.Logf("kelp list after an atomic replace:\n%s", r.Stdout)
		}},
		{"stack: unload --all", "kelp unload --all && " + clean, func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			var order []string
			for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				order = append(order, l[:strings.Index(l, ":")])
			}
			if got := strings.Join(order, ","); got != replace+",livepatch_sample,"+lp {
				t.Errorf("unload --all order = %s, want newest first", got)
			}
		}},

		// A patch for a module that is not loaded; info; already loaded;
		// unload refusals; --json.
		{"object not loaded", "kelp load " + demoKO + " >/dev/null && kelp list --json", func(t *testing.T, r vmtest.StepResult) {
			o := owner(listing(t, r), "busymod_work_func")
			if o == nil || o.State != livepatch.FuncNotLoaded || o.Owner != "" {
				t.Errorf("busymod_work_func with %s not loaded: %+v", busy, o)
			}
		}},
		{"info: loaded", "kelp info " + demo, func(t *testing.T, r vmtest.StepResult) {
			wantExit(0)(t, r)
			for _, w := range []string{"patch:       enabled", "object:      " + busy + " (not loaded)", "function:  busymod_work_func,1", "parameter:   pre_patch_ret=0"} {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("kelp info %s lacks %q:\n%s", demo, w, r.Stdout)
				}
			}
		}},
		{"info: file json", "kelp info --json " + demoKO, func(t *testing.T, r vmtest.StepResult) {
			var rep struct {
				File struct {
					Name      string `json:"name"`
					Livepatch bool   `json:"is_livepatch"`
					Vermagic  string `json:"vermagic"`
				} `json:"file"`
				Loaded *livepatch.LoadedModule `json:"loaded"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
				t.Fatalf("%v\n%s", err, r.Stdout)
			}
			if rep.File.Name != demo || !rep.File.Livepatch || !strings.HasPrefix(rep.File.Vermagic, b.kernel.Release+" ") || rep.Loaded == nil || rep.Loaded.Patch == nil {
				t.Errorf("kelp info --json = %s", r.Stdout)
			}
		}},
		{"already loaded", "kelp load " + demoKO, stdoutIs(demo + ": already loaded and enabled")},
		{"unload: json", "kelp unload --json " + demo, func(t *testing.T, r vmtest.StepResult) {
			var rep struct {
				SchemaVersion int                      `json:"schema_version"`
				Results       []livepatch.UnloadResult `json:"results"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || rep.SchemaVersion != 1 || len(rep.Results) != 1 || rep.Results[0].Status != livepatch.StatusUnloaded {
				t.Errorf("kelp unload --json: %v\n%s", err, r.Stdout)
			}
		}},
		{"unload: unknown", "kelp unload nosuchpatch", refused("nosuchpatch: no patch or module of that name is loaded")},
		{"unload: not a livepatch", "insmod " + guestKO + "/" + target + ".ko && kelp unload " + target + "; rc=$?; rmmod " + target + "; exit $rc", refused(target + " is not a livepatch module")},
		{"load: json", "kelp load --json " + lpPath, func(t *testing.T, r vmtest.StepResult) {
			var rep struct {
				SchemaVersion int                    `json:"schema_version"`
				Results       []livepatch.LoadResult `json:"results"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || rep.SchemaVersion != 1 || len(rep.Results) != 1 {
				t.Fatalf("kelp load --json: %v\n%s", err, r.Stdout)
			}
			res := rep.Results[0]
			// Tasks is what kelp saw switching: a transition that completes
			// before the first poll shows none, so it is not asserted.
			if res.Status != livepatch.StatusLoaded || !strings.Contains(strings.Join(res.KernelLog, "\n"), "'"+lp+"': patching complete") {
				t.Errorf("kelp load --json result = %+v", res)
			}
			if r.Stderr != "" {
				t.Errorf("--json printed progress on stderr: %q", r.Stderr)
			}
		}},
		// A failure under --json: one document, the error object, the
		// reason on stderr as well.
		{"load: json refused", "kelp load --json /root/bad/random.ko", func(t *testing.T, r vmtest.StepResult) {
			var rep struct {
				SchemaVersion int                    `json:"schema_version"`
				Results       []livepatch.LoadResult `json:"results"`
				Error         struct {
					Kind     string `json:"kind"`
					ExitCode int    `json:"exit_code"`
					Message  string `json:"message"`
				} `json:"error"`
			}
			dec := json.NewDecoder(strings.NewReader(r.Stdout))
			if err := dec.Decode(&rep); err != nil || dec.More() {
				t.Fatalf("kelp load --json of a bad file: not one JSON document: %v\n%s", err, r.Stdout)
			}
			if r.Exit != 1 || rep.SchemaVersion != 1 || rep.Results == nil || len(rep.Results) != 0 || rep.Error.Kind != "refused" || rep.Error.ExitCode != 1 ||
				strings.TrimSpace(r.Stderr) != "kelp: "+rep.Error.Message {
				t.Errorf("exit %d, document %+v, stderr %q", r.Exit, rep, r.Stderr)
			}
		}},
		{"load: verbose", "kelp unload " + lp + " && kelp load -v " + lpPath + " && kelp list && kelp unload -v " + lp + " && " + clean, func(t *testing.T, r vmtest.StepResult) {
			wantExit(0, "kernel: livepatch: '"+lp+"': patching complete", "kernel: livepatch: '"+lp+"': unpatching complete")(t, r)
			t.Logf("kelp load -v, kelp list, kelp unload -v:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
		}},
	}
	var steps []vmtest.Step
	for _, c := range checks {
		steps = append(steps, vmtest.Step{Name: c.name, Shell: c.shell, Timeout: 2 * time.Minute})
	}
	res := vmtest.RunT(t, vmtest.Config{Kernel: b.kernel, Files: files, Steps: steps, Timeout: 10 * time.Minute})
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r, ok := res.Step(c.name)
			if !ok {
				t.Fatal("step did not run")
			}
			c.test(t, r)
		})
	}
}

// otherRelease returns a kernel release of the same length that is not
// rel: the ABI number's digits replaced.
func otherRelease(rel string) string {
	b := []byte(rel)
	for i := strings.IndexByte(rel, '-') + 1; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if b[i] == '9' {
			b[i] = '8'
		} else {
			b[i] = '9'
		}
	}
	return string(b)
}
