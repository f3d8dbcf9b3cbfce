// Package e2e holds end-to-end tests that drive kelp as an admin would, on
// a real Debian system booted under QEMU.
package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/ksym/ksymtest"
)

const patched = "this has been live patched"

// fixModule is the system test's fix (testdata/kelp-e2e-fix.patch) as kelp
// builds it; fixCVE the id its header names.
const (
	fixModule = "kelp_e2e_fix"
	fixCVE    = "CVE-2099-10001"
)

// shipArtifacts are what a release engineer produces on a build host: kelp's
// own package, the patch's package for the test kernel and, when another
// kernel is given (the cloud flavour of the same ABI), for that kernel, an
// apt repository holding both, and one holding only the other kernel's.
type shipArtifacts struct {
	kelpDeb, patchDeb, patchPkg, repo string
	otherKernel                       string
	otherDeb, otherPkg, otherRepo     string
}

func buildArtifacts(t *testing.T, k, other *testenv.Kernel) shipArtifacts {
	t.Helper()
	dir := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kelp := filepath.Join(dir, "kelp")
	for _, c := range []string{"kelp", "kelp-package"} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=1.0.0", "-o", filepath.Join(dir, c), "./cmd/"+c)
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", c, err, out)
		}
	}
	kernels := []*testenv.Kernel{k}
	if other != nil {
		kernels = append(kernels, other)
	}
	dist := filepath.Join(dir, "dist")
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The fix, as an SRE builds it: one kelp build for every kernel, each
	// with its own symbols dump, signed; then one package per kernel.
	key, cert := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "signing.crt")
	run("openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "2", "-batch", "-x509",
		"-subj", "/CN=kelp system test", "-newkey", "rsa:2048", "-keyout", key, "-out", cert)
	out := filepath.Join(dir, "out")
	args := []string{"build"}
	var kos []string
	for _, kk := range kernels {
		args = append(args, "-k", kk.Release, "--symbols", ksymtest.KallsymsPath(t, kk))
		kos = append(kos, filepath.Join(out, kk.Release, fixModule+".ko"))
	}
	if len(kernels) == 1 {
		// One kernel: the module goes straight into the output directory.
		kos[0] = filepath.Join(out, fixModule+".ko")
	}
	built := run(kelp, append(args, "-n", fixModule, "--sign-key", key, "--sign-cert", cert, "-o", out, "testdata/kelp-e2e-fix.patch")...)
	for i, kk := range kernels {
		if !strings.Contains(built, "built "+kos[i]+" for "+kk.Release) {
			t.Fatalf("kelp build for %s:\n%s", kk.Release, built)
		}
	}
	if !strings.Contains(built, "fixes "+fixCVE) {
		t.Errorf("kelp build does not say what the fix fixes:\n%s", built)
	}
	run(kelp, "package", "--self", "--format", "deb", "-o", dist)
	run(kelp, append(append([]string{"package"}, kos...), "--format", "deb", "-o", dist, "--maintainer", "Ops <ops@example.org>")...)
	pkg := "kelp-patch-" + strings.ReplaceAll(fixModule, "_", "-") + "-"
	a := shipArtifacts{patchPkg: pkg + k.Release}
	if other != nil {
		a.otherKernel, a.otherPkg = other.Release, pkg+other.Release
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	for _, d := range debs {
		switch base := filepath.Base(d); {
		case strings.HasPrefix(base, "kelp_"):
			a.kelpDeb = d
		case strings.HasPrefix(base, a.patchPkg+"_"):
			a.patchDeb = d
		case other != nil && strings.HasPrefix(base, a.otherPkg+"_"):
			a.otherDeb = d
		}
	}
	if a.kelpDeb == "" || a.patchDeb == "" || (other != nil && a.otherDeb == "") || len(debs) != len(kernels)+1 {
		t.Fatalf("packages not written: %v", debs)
	}
	if other == nil {
		return a
	}
	// The repository, as docs/shipping.md sets it up.
	if _, err := exec.LookPath("reprepro"); err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: "reprepro", Package: "reprepro"})
	}
	repo := func(name string, debs ...string) string {
		t.Helper()
		r := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(r, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r, "conf", "distributions"), []byte("Codename: bookworm\nComponents: main\nArchitectures: amd64\nDescription: kelp live patches\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run("reprepro", append([]string{"-b", r, "includedeb", "bookworm"}, debs...)...)
		return r
	}
	a.repo = repo("repo", a.patchDeb, a.otherDeb)
	a.otherRepo = repo("repo-other", a.otherDeb)
	return a
}

// sortedLines returns its arguments sorted.
func sortedLines(lines ...string) []string {
	out := append([]string(nil), lines...)
	sort.Strings(out)
	return out
}

// treeFiles returns every file under dir as payload files under guest.
func treeFiles(t *testing.T, dir, guest string) []vmtest.File {
	t.Helper()
	var out []vmtest.File
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, vmtest.File{Path: filepath.Join(guest, rel), Host: p})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// statusJSON is the part of `kelp status --json` the test reads.
type statusJSON struct {
	Kernel    string   `json:"kernel"`
	FixedCVEs []string `json:"fixed_cves"`
	Loaded    []struct {
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
	} `json:"loaded"`
	Installed []struct {
		Name string `json:"name"`
	} `json:"installed"`
	Quarantined []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"quarantined"`
	Applying []struct {
		Name string `json:"name"`
	} `json:"applying"`
}

func parseStatus(t *testing.T, out string) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("kelp status --json: %v\n%s", err, out)
	}
	return st
}

// TestKeepAndShip builds a fix with kelp for two kernels in one run
// (signed, saying what it fixes), packages it per kernel, installs kelp
// and the fix as Debian packages on a real Debian 12 system, reboots it,
// cuts its power while a patch is being applied at boot, removes the
// patch package, rolls it out again from an apt repository with the
// documented Ansible playbook, boots with kelp.enable=0, and crashes the
// kernel while the patch is applied at boot.
func TestKeepAndShip(t *testing.T) {
	k := testenv.RequireKernel(t)
	other := testenv.RequireKernelOf(t, testenv.Cloud61Kernel)
	keepAndShip(t, k, other, 0)
}

// TestKeepAndShip612 does the same on a Debian 13 system booting Debian
// 13's 6.12 kernel, the fix built by kelp on this host for that kernel
// (in its build root): install, reboot, the power cut, apt-get remove and
// kelp.enable=0. The repository roll-out and the kernel crash, which test
// kelp's packaging and boot guard and not the kernel, run on Debian 12
// only.
func TestKeepAndShip612(t *testing.T) {
	k := testenv.RequireKernelOf(t, func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") })
	// One vCPU: under QEMU's TCG the 6.12 kernel's int3-based text
	// patching now and then Oopses (int3) on another vCPU while the
	// kernel boots, before any module is loaded (as in the 6.12
	// selftests' syscall case).
	keepAndShip(t, k, nil, 1)
}

// keepAndShip is the system test on kernel k's Debian release. With other
// (a second kernel the fix is built for) it also rolls the fix out from
// apt repositories and crashes the kernel while the fix is applied. cpus
// is the guests' vCPU count (0: vmtest's default).
func keepAndShip(t *testing.T, k, other *testenv.Kernel, cpus int) {
	img, err := vmtest.System(context.Background(), k)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	a := buildArtifacts(t, k, other)
	disk, err := vmtest.NewSystemDisk(t.TempDir(), img)
	if err != nil {
		t.Fatal(err)
	}
	boot := func(name string, steps []vmtest.Step, extra func(*vmtest.Config)) *vmtest.Result {
		t.Helper()
		t.Logf("boot: %s", name)
		cfg := vmtest.Config{Kernel: k, System: disk, Timeout: 5 * time.Minute, Steps: steps, CPUs: cpus}
		if extra != nil {
			extra(&cfg)
		}
		return vmtest.RunT(t, cfg)
	}
	mark := "/var/lib/kelp/" + k.Release + "/applying/" + fixModule
	const settleDropIn = "/etc/systemd/system/kelp.service.d"
	// longSettle holds the next boot's applying mark for 30 minutes, so
	// that a power cut or a crash comes while it exists, however slow
	// the guest is.
	longSettle := "mkdir -p " + settleDropIn + " && printf '[Service]\\nExecStart=\\nExecStart=/usr/sbin/kelp load --all --boot --settle 30m\\n' > " + settleDropIn + "/settle.conf && sync"
	waitSettled := "for i in $(seq 120); do [ \"$(systemctl show -p SubState --value kelp.service)\" = exited ] && break; sleep 1; done; systemctl show -p SubState --value kelp.service"

	// 1. dpkg -i kelp and the patch package: the patch is live.
	r := boot("install packages", []vmtest.Step{
		{Name: "before", Shell: "cat /proc/cmdline"},
		{Name: "install", Shell: "dpkg -i /kelp/" + filepath.Base(a.kelpDeb) + " /kelp/" + filepath.Base(a.patchDeb)},
		{Name: "cmdline", Shell: "cat /proc/cmdline"},
		{Name: "enabled", Shell: "systemctl is-enabled kelp.service"},
		{Name: "status", Shell: "kelp status --json"},
	}, func(c *vmtest.Config) {
		c.Files = []vmtest.File{{Path: "/kelp/" + filepath.Base(a.kelpDeb), Host: a.kelpDeb}, {Path: "/kelp/" + filepath.Base(a.patchDeb), Host: a.patchDeb}}
	})
	if strings.Contains(r.MustStep(t, "before").Stdout, patched) {
		t.Fatal("patched before anything was installed")
	}
	r.MustStep(t, "install")
	if got := strings.TrimSpace(r.MustStep(t, "cmdline").Stdout); got != patched {
		t.Fatalf("after dpkg -i, /proc/cmdline = %q", got)
	}
	if got := strings.TrimSpace(r.MustStep(t, "enabled").Stdout); got != "enabled" {
		t.Errorf("kelp.service is %q after installing kelp", got)
	}
	st := parseStatus(t, r.MustStep(t, "status").Stdout)
	if len(st.Loaded) != 1 || st.Loaded[0].Name != fixModule || len(st.Installed) != 1 {
		t.Errorf("status after install: %+v", st)
	}
	if len(st.FixedCVEs) != 1 || st.FixedCVEs[0] != fixCVE {
		t.Errorf("status after install: fixed_cves %q, want the fix's %s", st.FixedCVEs, fixCVE)
	}

	// 2. Reboot: kelp.service applies the patch again.
	r = boot("reboot", []vmtest.Step{
		{Name: "cmdline", Shell: "cat /proc/cmdline"},
		{Name: "settled", Shell: waitSettled},
		{Name: "service", Shell: "systemctl status kelp.service --no-pager; systemctl is-failed kelp.service; true"},
		{Name: "journal", Shell: "journalctl -b -u kelp.service --no-pager -o cat"},
		{Name: "marks", Shell: "ls /var/lib/kelp/" + k.Release + "/applying/ | wc -l"},
		{Name: "metrics", Shell: "kelp status --prometheus /run/kelp.prom && cat /run/kelp.prom"},
		// The next boot's power cut must come while its mark exists, however
		// slow the guest is: hold the settle time for that boot.
		{Name: "long-settle", Shell: longSettle},
	}, nil)
	if got := strings.TrimSpace(r.MustStep(t, "cmdline").Stdout); got != patched {
		t.Fatalf("after reboot, /proc/cmdline = %q", got)
	}
	if got := strings.TrimSpace(r.MustStep(t, "settled").Stdout); got != "exited" {
		t.Errorf("kelp.service sub-state %q, want exited (active, its work done)", got)
	}
	svc := r.MustStep(t, "service").Stdout
	if !strings.Contains(svc, "Active: active (exited)") || !strings.Contains(svc, "\nactive") {
		t.Errorf("systemctl status kelp:\n%s", svc)
	}
	if j := r.MustStep(t, "journal").Stdout; !strings.Contains(j, fixModule+": loaded") {
		t.Errorf("kelp.service journal lacks the load:\n%s", j)
	}
	if got := strings.TrimSpace(r.MustStep(t, "marks").Stdout); got != "0" {
		t.Errorf("%s applying marks left after settling", got)
	}
	metrics := r.MustStep(t, "metrics").Stdout
	for _, want := range []string{"kelp_patches_loaded 1\n", "kelp_patches_installed 1\n", "kelp_patches_quarantined 0\n", `kelp_patch{name="` + fixModule + `",state="enabled"} 1`, `kelp_cve_fixed{cve="` + fixCVE + `"} 1`, `kelp_kernel_info{release="` + k.Release + `"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("node_exporter metrics lack %q:\n%s", want, metrics)
		}
	}

	r.MustStep(t, "long-settle")

	// 3. Power lost right after the applying mark is written at boot.
	r = boot("power cut while applying", []vmtest.Step{
		{Name: "marked", Shell: "test -e " + mark + " && cat " + mark},
	}, func(c *vmtest.Config) { c.KillAfter = "marked" })
	r.MustStep(t, "marked")
	r = boot("after the power cut", []vmtest.Step{
		{Name: "settle-back", Shell: "rm -r " + settleDropIn + " && systemctl daemon-reload"},
		{Name: "running", Shell: "systemctl is-system-running --wait; true"},
		{Name: "cmdline", Shell: "cat /proc/cmdline"},
		{Name: "status", Shell: "kelp status --json"},
		{Name: "status-text", Shell: "kelp status"},
		{Name: "list", Shell: "kelp list"},
		// Reinstalling the patch package keeps the quarantine: only the
		// admin lifts it.
		{Name: "reinstall-patch", Shell: "dpkg -i /kelp/" + filepath.Base(a.patchDeb)},
		{Name: "reinstalled-cmdline", Shell: "cat /proc/cmdline"},
		{Name: "reinstalled-status", Shell: "kelp status --json"},
		// Reinstalling kelp keeps an admin's disable of kelp.service.
		{Name: "disabled-kept", Shell: "systemctl disable kelp.service 2>/dev/null && dpkg -i /kelp/" + filepath.Base(a.kelpDeb) + " >/dev/null && systemctl is-enabled kelp.service; systemctl enable kelp.service 2>/dev/null"},
	}, func(c *vmtest.Config) {
		c.Files = []vmtest.File{{Path: "/kelp/" + filepath.Base(a.kelpDeb), Host: a.kelpDeb}, {Path: "/kelp/" + filepath.Base(a.patchDeb), Host: a.patchDeb}}
	})
	checkQuarantined(t, r, "the power cut")
	t.Logf("kelp status after the power cut:\n%s", r.MustStep(t, "status-text").Stdout)
	if got := r.MustStep(t, "list").Stdout; !regexp.MustCompile(`(?m)^ *` + regexp.QuoteMeta(k.Release+" (running): "+fixModule) + ` .*\[` + fixCVE + `\] \(quarantined\)$`).MatchString(got) {
		t.Errorf("kelp list does not show the quarantined installed patch:\n%s", got)
	}
	r.MustStep(t, "reinstall-patch")
	if strings.Contains(r.MustStep(t, "reinstalled-cmdline").Stdout, patched) {
		t.Error("reinstalling the patch package loaded the quarantined patch")
	}
	if st := parseStatus(t, r.MustStep(t, "reinstalled-status").Stdout); len(st.Quarantined) != 1 || len(st.Installed) != 1 {
		t.Errorf("status after reinstalling the quarantined patch's package: %+v", st)
	}
	if got := strings.TrimSpace(r.MustStep(t, "disabled-kept").Stdout); got != "disabled" {
		t.Errorf("after systemctl disable and a reinstall of kelp, kelp.service is %q", got)
	}

	// 4. Lift the quarantine, load, then apt-get remove: unloaded and
	// uninstalled.
	reload := []vmtest.Step{
		{Name: "reload", Shell: "kelp unquarantine " + fixModule + " && kelp load " + fixModule + " && cat /proc/cmdline"},
		{Name: "remove", Shell: "apt-get remove -y " + a.patchPkg},
		{Name: "after-remove", Shell: "cat /proc/cmdline; ls /sys/kernel/livepatch | wc -l; grep -c " + fixModule + " /proc/modules; ls /var/lib/kelp/" + k.Release + "/patches | wc -l"},
	}
	checkRemoved := func(r *vmtest.Result) {
		t.Helper()
		if got := r.MustStep(t, "reload").Stdout; !strings.Contains(got, patched) {
			t.Fatalf("reload after unquarantine: %q", got)
		}
		r.MustStep(t, "remove")
		after := strings.Fields(r.MustStep(t, "after-remove").Stdout)
		if s, _ := r.Step("after-remove"); strings.Contains(s.Stdout, patched) || len(after) < 3 || after[len(after)-3] != "0" || after[len(after)-1] != "0" {
			t.Errorf("after apt-get remove (cmdline, livepatch dirs, module, store files):\n%s", s.Stdout)
		}
	}
	if other == nil {
		// Installed again for the kelp.enable=0 boot to leave alone.
		r = boot("remove", append(reload, vmtest.Step{Name: "reinstall", Shell: "dpkg -i /kelp/" + filepath.Base(a.patchDeb) + " >/dev/null && cat /proc/cmdline"}), func(c *vmtest.Config) {
			c.Files = []vmtest.File{{Path: "/kelp/" + filepath.Base(a.patchDeb), Host: a.patchDeb}}
		})
		checkRemoved(r)
		if got := strings.TrimSpace(r.MustStep(t, "reinstall").Stdout); got != patched {
			t.Errorf("after installing the patch package again, /proc/cmdline = %q", got)
		}
		enableOff(t, boot, nil)
		return
	}
	// Then the documented roll-out, from a repository that
	// holds the patch only for another kernel: the host is reported and
	// skipped, nothing installed. From a repository with both kernels'
	// packages: the one of the running kernel is installed and live.
	// Installing the other kernel's package by hand pulls in no kernel.
	inventory := "[canary]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
	rollout := "ansible-playbook -i /kelp/inventory.ini /kelp/kelp-rollout.yml -e patch_module=" + fixModule
	installed := "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' 'kelp-patch-*' 'linux-image-*' 2>/dev/null | awk '$1 == \"ii\" { print $2 }' | sort"
	r = boot("remove and roll out again", append(reload, []vmtest.Step{
		{Name: "repo-other", Shell: "echo 'deb [trusted=yes] file:/kelp/repo-other bookworm main' > /etc/apt/sources.list.d/kelp.list"},
		{Name: "rollout-other", Shell: rollout},
		{Name: "after-other", Shell: installed + "; ls /sys/kernel/livepatch | wc -l"},
		{Name: "repo", Shell: "echo 'deb [trusted=yes] file:/kelp/repo bookworm main' > /etc/apt/sources.list.d/kelp.list"},
		{Name: "rollout", Shell: rollout},
		{Name: "cmdline", Shell: "cat /proc/cmdline"},
		{Name: "search", Shell: "apt-cache search " + fixCVE + " | cut -d' ' -f1 | sort"},
		{Name: "install-other", Shell: "apt-get install -y " + a.otherPkg + " >/dev/null && " + installed + " && cat /proc/cmdline && ls /var/lib/kelp/" + a.otherKernel + "/patches"},
	}...), func(c *vmtest.Config) {
		// Two Ansible runs and three apt runs: slow under TCG on a
		// loaded machine.
		c.Timeout = 12 * time.Minute
		c.Files = append(append(treeFiles(t, a.repo, "/kelp/repo"), treeFiles(t, a.otherRepo, "/kelp/repo-other")...),
			vmtest.File{Path: "/kelp/inventory.ini", Data: []byte(inventory)},
			vmtest.File{Path: "/kelp/kelp-rollout.yml", Host: "../../examples/ansible/kelp-rollout.yml"})
	})
	checkRemoved(r)
	r.MustStep(t, "repo-other")
	skip := "kelp: no build of " + fixModule + " for kernel " + k.Release
	if s := r.MustStep(t, "rollout-other"); !strings.Contains(s.Stdout, skip) || !strings.Contains(s.Stdout, "failed=0") {
		t.Errorf("roll-out with only another kernel's build: want the host reported (%q) and no failure:\n%s", skip, s.Stdout)
	}
	if got, want := r.MustStep(t, "after-other").Stdout, "linux-image-"+k.Release+"\n0\n"; got != want {
		t.Errorf("after the roll-out that skipped the host, installed kelp patches and kernels, and livepatches: %q, want %q", got, want)
	}
	r.MustStep(t, "repo")
	if s := r.MustStep(t, "rollout"); !strings.Contains(s.Stdout, "failed=0") || strings.Contains(s.Stdout, skip) {
		t.Errorf("ansible-playbook:\n%s", s.Stdout)
	}
	if got := strings.TrimSpace(r.MustStep(t, "cmdline").Stdout); got != patched {
		t.Errorf("after the roll-out, /proc/cmdline = %q", got)
	}
	if got, want := r.MustStep(t, "search").Stdout, strings.Join(sortedLines(a.patchPkg, a.otherPkg), "\n")+"\n"; got != want {
		t.Errorf("apt-cache search %s = %q, want both kernels' packages %q", fixCVE, got, want)
	}
	wantInstalled := strings.Join(sortedLines(a.patchPkg, a.otherPkg, "linux-image-"+k.Release), "\n") + "\n" + patched + "\n" + fixModule + ".ko\n"
	if got := r.MustStep(t, "install-other").Stdout; got != wantInstalled {
		t.Errorf("after installing the other kernel's patch package (installed packages, cmdline, that kernel's store): %q, want %q", got, wantInstalled)
	}

	// 5. kelp.enable=0: nothing is loaded at boot. The next boot holds
	// its applying mark long.
	r = enableOff(t, boot, []vmtest.Step{{Name: "long-settle", Shell: longSettle}})
	r.MustStep(t, "long-settle")

	// 6. The kernel crashes while the patch is being applied at boot (a
	// crash, where step 3 cut the power): the next boot quarantines it.
	r = boot("kernel crash while applying", []vmtest.Step{
		{Name: "crash", Shell: "for i in $(seq 600); do test -e " + mark + " && break; sleep 0.2; done; test -e " + mark + " && echo c > /proc/sysrq-trigger"},
	}, func(c *vmtest.Config) { c.CrashIn = "crash" })
	if !strings.Contains(r.Panic, "sysrq triggered crash") {
		t.Fatalf("the boot that applied the patch ended with panic %q, want the sysrq crash", r.Panic)
	}
	r = boot("after the crash", []vmtest.Step{
		{Name: "settle-back", Shell: "rm -r " + settleDropIn + " && systemctl daemon-reload"},
		{Name: "running", Shell: "systemctl is-system-running --wait; true"},
		{Name: "cmdline", Shell: "cat /proc/cmdline"},
		{Name: "status", Shell: "kelp status --json"},
	}, nil)
	checkQuarantined(t, r, "the kernel crash")
}

// enableOff boots with kelp.enable=0 on the kernel command line, with the
// patch package installed, and checks that kelp loaded nothing; extra
// steps run after the checks' own.
func enableOff(t *testing.T, boot func(string, []vmtest.Step, func(*vmtest.Config)) *vmtest.Result, extra []vmtest.Step) *vmtest.Result {
	t.Helper()
	r := boot("kelp.enable=0", append([]vmtest.Step{
		{Name: "cmdline", Shell: "cat /proc/cmdline"},
		{Name: "installed", Shell: "ls /var/lib/kelp/$(uname -r)/patches"},
		{Name: "loaded", Shell: "ls /sys/kernel/livepatch | wc -l"},
		{Name: "service", Shell: "systemctl status kelp.service --no-pager; true"},
	}, extra...), func(c *vmtest.Config) { c.Cmdline = []string{"kelp.enable=0"} })
	if got := r.MustStep(t, "cmdline").Stdout; !strings.Contains(got, "kelp.enable=0") {
		t.Errorf("/proc/cmdline = %q", got)
	}
	if got := r.MustStep(t, "installed").Stdout; !strings.Contains(got, fixModule+".ko") {
		t.Errorf("the fix is not installed for the boot with kelp.enable=0 (store: %q): it proves nothing", got)
	}
	if got := strings.TrimSpace(r.MustStep(t, "loaded").Stdout); got != "0" {
		t.Errorf("%s patches loaded with kelp.enable=0", got)
	}
	if got := r.MustStep(t, "service").Stdout; !strings.Contains(got, "ConditionKernelCommandLine=!kelp.enable=0 was not met") {
		t.Errorf("kelp.service with kelp.enable=0:\n%s", got)
	}
	return r
}

// checkQuarantined checks the boot after the machine died while the fix
// was being applied (steps settle-back, running, cmdline, status): the
// system runs, the fix is not loaded, and it is quarantined for that.
func checkQuarantined(t *testing.T, r *vmtest.Result, after string) {
	t.Helper()
	r.MustStep(t, "settle-back")
	if got := strings.TrimSpace(r.MustStep(t, "running").Stdout); got != "running" {
		t.Errorf("system state after %s: %q", after, got)
	}
	if strings.Contains(r.MustStep(t, "cmdline").Stdout, patched) {
		t.Errorf("the patch being applied at %s was loaded again", after)
	}
	st := parseStatus(t, r.MustStep(t, "status").Stdout)
	if len(st.Quarantined) != 1 || st.Quarantined[0].Name != fixModule || !strings.Contains(st.Quarantined[0].Reason, "stopped while or shortly after applying") || len(st.Loaded) != 0 {
		t.Errorf("status after %s: %+v", after, st)
	}
}
