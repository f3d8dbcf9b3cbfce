package klpmod

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/kmod"
)

// vmCombined are corpus patches (plus the /proc/cmdline change) that one
// module carries at once in TestLoadInKernel.
var vmCombined = []string{"cmdline-string", "body-change", "new-static-data", "exception-table", "static-local-kept", "tracepoint", "jump-label-vmlinux", "clone-part-cold"}

// signingKey makes an RSA key and self-signed certificate with openssl.
func signingKey(t *testing.T) (key, cert string) {
	t.Helper()
	dir := t.TempDir()
	key, cert = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	out, err := exec.Command("openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "36500", "-batch", "-x509",
		"-newkey", "rsa:2048", "-subj", "/CN=kelp test signing key", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	return key, cert
}

// TestLoadInKernel assembles modules from source patches and loads them
// with kelp into the real kernel under QEMU, one boot:
//   - the /proc/cmdline string change (a klp relocation to
//     saved_command_line) changes what /proc/cmdline shows, and unloading
//     restores it;
//   - body-change (klp relocations to get_avenrun, nr_threads,
//     nr_running) serves /proc/loadavg with the right thread count and
//     every load raised by 100.00, which the unpatched kernel in a 2-CPU
//     guest never shows before loading or after unloading;
//   - one module of eight units (code and special sections with klp
//     relocations merged in the link) loads, changes /proc/cmdline, keeps
//     the kernel working (forks and exits through the patched tracepoint
//     caller, directory listings through the patched filldir64, proc
//     files through patched handlers) and unloads;
//   - a signed module loads, and kmod reads its signature back;
//   - a unit of the ext4 module (a klp_object named ext4, relocations in
//     .klp.rela.ext4.* sections) patches the loaded module: the feature
//     files in /sys/fs/ext4/features read differently until unload;
//   - the four callbacks declared with kpatch's macro names run in order
//     around patching and unpatching, and post-patch finds the declared
//     klp_state.
func TestLoadInKernel(t *testing.T) {
	k := testenv.RequireKernel(t)
	key, cert := signingKey(t)
	cmdline := buildPatch(t, k, "cmdline-string", Options{Name: "kelp_cmdline", Replace: true})
	loadavg := buildPatch(t, k, "body-change", Options{Name: "kelp_loadavg", Replace: true})
	signed := buildPatch(t, k, "cmdline-string", Options{Name: "kelp_signed", Replace: true, SignKey: key, SignCert: cert})
	callbacks := buildMarkers(t, k)
	ext4 := buildPatch(t, k, "ext4-feature-string", Options{Name: "kelp_ext4", Replace: true})
	units := diffUnits(t, k, combinedPatch(t, vmCombined...))
	all, err := Build(context.Background(), units, Options{Name: "kelp_all", Kernel: k.Release, Headers: k.Headers, Replace: true, WorkDir: t.TempDir()})
	if err != nil {
		logKbuild(t, err)
		t.Fatal(err)
	}
	km, err := kmod.Open(signed.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !signed.Signed || km.Signature == nil || km.Signature.Signer != "kelp test signing key" || km.Signature.HashAlgo != "sha256" {
		t.Fatalf("signed module: Signed %v, signature %+v", signed.Signed, km.Signature)
	}

	res := vmtest.RunT(t, vmtest.Config{
		Kernel:  k,
		Modules: []string{"ext4"},
		Files: []vmtest.File{
			{Path: "/root/kelp_cmdline.ko", Host: cmdline.Path},
			{Path: "/root/kelp_loadavg.ko", Host: loadavg.Path},
			{Path: "/root/kelp_all.ko", Host: all.Path},
			{Path: "/root/kelp_signed.ko", Host: signed.Path},
			{Path: "/root/kelp_callbacks.ko", Host: callbacks.Path},
			{Path: "/root/kelp_ext4.ko", Host: ext4.Path},
		},
		Steps: []vmtest.Step{
			{Name: "before", Shell: "cat /proc/cmdline"},
			{Name: "load", Shell: "kelp load /root/kelp_cmdline.ko"},
			{Name: "patched", Shell: "cat /proc/cmdline"},
			{Name: "list", Shell: "kelp list"},
			{Name: "unload", Shell: "kelp unload kelp_cmdline && ! grep -w kelp_cmdline /proc/modules"},
			{Name: "restored", Shell: "cat /proc/cmdline"},

			{Name: "loadavg-before", Shell: "cat /proc/loadavg"},
			{Name: "loadavg-load", Shell: "kelp load /root/kelp_loadavg.ko"},
			{Name: "loadavg", Shell: "cat /proc/loadavg; ls /proc | grep -c '^[0-9]'; cat /proc/loadavg"},
			{Name: "loadavg-unload", Shell: "kelp unload kelp_loadavg >/dev/null && cat /proc/loadavg"},

			{Name: "all-load", Shell: "kelp load /root/kelp_all.ko"},
			{Name: "all-patched", Shell: "cat /proc/cmdline"},
			{Name: "all-works", Shell: "for i in 1 2 3 4 5 6 7 8; do sh -c true; done; ls / | grep -c .; cat /proc/uptime /proc/loadavg >/dev/null && echo proc-ok"},
			{Name: "all-list", Shell: "kelp list"},
			{Name: "all-unload", Shell: "kelp unload kelp_all >/dev/null && cat /proc/cmdline"},

			{Name: "signed-load", Shell: "kelp load /root/kelp_signed.ko && cat /proc/cmdline && kelp unload kelp_signed"},

			{Name: "ext4", Shell: "f=/sys/fs/ext4/features/lazy_itable_init; cat $f; kelp load /root/kelp_ext4.ko >/dev/null && cat $f && kelp list | grep ext4_attr_show && kelp unload kelp_ext4 >/dev/null && cat $f"},
			{Name: "callbacks", Shell: "kelp load /root/kelp_callbacks.ko >/dev/null && cat /proc/cmdline && kelp unload kelp_callbacks >/dev/null && dmesg | grep kelp-test:"},
		},
	})
	before := res.MustStep(t, "before").Stdout
	if !strings.Contains(before, "console=ttyS0") || strings.Contains(before, "kelp.patched") {
		t.Fatalf("/proc/cmdline before = %q", before)
	}
	patchedLine := strings.TrimSuffix(before, "\n") + " kelp.patched=1\n"
	t.Logf("kelp load:\n%s%s", res.MustStep(t, "load").Stdout, res.MustStep(t, "load").Stderr)
	if got := res.MustStep(t, "patched").Stdout; got != patchedLine {
		t.Errorf("/proc/cmdline patched = %q, want %q", got, patchedLine)
	}
	if got := res.MustStep(t, "list").Stdout; !strings.Contains(got, "cmdline_proc_show") {
		t.Errorf("kelp list does not show cmdline_proc_show:\n%s", got)
	}
	res.MustStep(t, "unload")
	if got := res.MustStep(t, "restored").Stdout; got != before {
		t.Errorf("/proc/cmdline after unload = %q, want %q", got, before)
	}

	res.MustStep(t, "loadavg-load")
	checkLoadavgUnpatched(t, "before loading", res.MustStep(t, "loadavg-before").Stdout)
	checkLoadavg(t, res.MustStep(t, "loadavg").Stdout)
	checkLoadavgUnpatched(t, "after unloading", res.MustStep(t, "loadavg-unload").Stdout)

	res.MustStep(t, "all-load")
	if got := res.MustStep(t, "all-patched").Stdout; got != patchedLine {
		t.Errorf("/proc/cmdline with the combined module = %q, want %q", got, patchedLine)
	}
	if got := res.MustStep(t, "all-works").Stdout; !strings.HasSuffix(got, "proc-ok\n") {
		t.Errorf("with the combined module loaded: %q", got)
	}
	list := res.MustStep(t, "all-list").Stdout
	t.Logf("kelp list with the combined module:\n%s", list)
	for _, fn := range []string{"cmdline_proc_show", "loadavg_proc_show", "uptime_proc_show", "filldir64", "__queue_work", "delayed_put_task_struct", "set_freezable", "rseq_warn_flags.part.0"} {
		if !strings.Contains(list, fn+",") {
			t.Errorf("kelp list does not show %s", fn)
		}
	}
	if got := res.MustStep(t, "all-unload").Stdout; got != before {
		t.Errorf("/proc/cmdline after unloading the combined module = %q, want %q", got, before)
	}

	t.Logf("signed module: %s%s", res.MustStep(t, "signed-load").Stdout, res.MustStep(t, "signed-load").Stderr)
	if got := res.MustStep(t, "signed-load").Stdout; !strings.Contains(got, "kelp.patched=1") {
		t.Errorf("signed module: /proc/cmdline = %q", got)
	}
	e4 := res.MustStep(t, "ext4").Stdout
	t.Logf("ext4:\n%s", e4)
	if lines := strings.Split(strings.TrimSpace(e4), "\n"); len(lines) < 4 || lines[0] != "supported" || lines[1] != "supported (kelp)" || !strings.Contains(e4, "ext4 (patched): ext4_attr_show,1") || lines[len(lines)-1] != "supported" {
		t.Errorf("ext4 feature file before, while patched (and kelp list), after: %q", lines)
	}
	cb := res.MustStep(t, "callbacks").Stdout
	t.Logf("callbacks:\n%s", cb)
	var seen []string
	for _, l := range strings.Split(cb, "\n") {
		if _, msg, ok := strings.Cut(l, "kelp-test: "); ok {
			seen = append(seen, msg)
		}
	}
	want := []string{"pre_patch vmlinux", "post_patch vmlinux state 42 version 3", "pre_unpatch vmlinux", "post_unpatch vmlinux"}
	if !strings.Contains(cb, "kelp.patched=1") || !slices.Equal(seen, want) {
		t.Errorf("callbacks module: callbacks ran %q, want %q", seen, want)
	}
	for _, p := range []string{"kelp_cmdline", "kelp_loadavg", "kelp_all", "kelp_signed", "kelp_callbacks", "kelp_ext4"} {
		if !strings.Contains(res.Dmesg, "'"+p+"': patching complete") || !strings.Contains(res.Dmesg, "'"+p+"': unpatching complete") {
			t.Errorf("kernel log lacks the patching and unpatching of %s", p)
		}
	}
}

var loadavgRE = regexp.MustCompile(`^(\d+)\.\d\d \d+\.\d\d \d+\.\d\d (\d+)/(\d+) \d+$`)

// checkLoadavg reads two /proc/loadavg lines around a count of processes:
// the patched function reads nr_running and nr_threads through klp
// relocations, so its counts must be plausible.
func checkLoadavg(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("loadavg step output %q", out)
	}
	procs, _ := strconv.Atoi(lines[1])
	for _, l := range []string{lines[0], lines[2]} {
		m := loadavgRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("patched /proc/loadavg = %q", l)
		}
		running, _ := strconv.Atoi(m[2])
		threads, _ := strconv.Atoi(m[3])
		if running < 1 || threads < procs || threads > procs+100 {
			t.Errorf("patched /proc/loadavg %q: %d running, %d threads, with %d processes", l, running, threads, procs)
		}
		// The patch adds 100.00 to every load average: a 2-CPU guest
		// never has a load of 100 on its own.
		if load, _ := strconv.Atoi(m[1]); load < 100 {
			t.Errorf("patched /proc/loadavg %q: load %d, want at least 100 (the patched code did not run)", l, load)
		}
	}
}

// checkLoadavgUnpatched checks /proc/loadavg as the kernel's own code
// serves it: a load below 100.
func checkLoadavgUnpatched(t *testing.T, when, out string) {
	t.Helper()
	m := loadavgRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		t.Fatalf("/proc/loadavg %s = %q", when, out)
	}
	if load, _ := strconv.Atoi(m[1]); load >= 100 {
		t.Errorf("/proc/loadavg %s = %q: the patched code runs", when, out)
	}
}
