package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"flag"
	"github.com/kelp-project/kelp/ksym"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
)

// The contract of docs/cli.md, proven command by command on a fake
// /proc, /sys and /boot and a store in a temporary directory: exit codes,
// one JSON document with schema_version on stdout under --json, one error
// object shape, one field vocabulary, and golden files of every command's
// JSON (testdata/golden; go test ./cmd/kelp -update rewrites them).

var update = flag.Bool("update", false, "rewrite the golden files")

const rel = "6.1.0-56-amd64"

// fakeHost is a machine that can live patch, with one patch loaded
// (livepatch_fix, vmlinux:cmdline_proc_show) and one installed (fix_a).
type fakeHost struct {
	dir   string // everything below it is the test's
	root  string // the fake /
	store string // KELP_STORE_DIR
	files map[string]string
}

func (h *fakeHost) path(name string) string { return filepath.Join(h.dir, name) }

func capableFiles() map[string]string {
	return map[string]string{
		"proc/sys/kernel/osrelease":                                       rel + "\n",
		"proc/sys/kernel/tainted":                                         "32768\n",
		"proc/sys/kernel/random/boot_id":                                  "6a9b4a52-5b8e-4a51-9f43-1d2e0c6f7a10\n",
		"proc/cmdline":                                                    "BOOT_IMAGE=/vmlinuz-" + rel + " root=/dev/vda ro\n",
		"proc/kallsyms":                                                   "ffffffff81000000 T _stext\nffffffff81234560 T cmdline_proc_show\n",
		"proc/sys/kernel/ftrace_enabled":                                  "1\n",
		"proc/sys/kernel/modules_disabled":                                "0\n",
		"proc/modules":                                                    "livepatch_fix 16384 1 - Live 0xffffffffc0300000 (K)\next4 999424 1 - Live 0xffffffffc0100000\n",
		"boot/config-" + rel:                                              "CONFIG_LIVEPATCH=y\nCONFIG_HAVE_RELIABLE_STACKTRACE=y\n",
		"sys/kernel/security/lockdown":                                    "[none] integrity confidentiality\n",
		"sys/module/module/parameters/sig_enforce":                        "N\n",
		"sys/kernel/livepatch/livepatch_fix/enabled":                      "1\n",
		"sys/kernel/livepatch/livepatch_fix/transition":                   "0\n",
		"sys/kernel/livepatch/livepatch_fix/vmlinux/patched":              "1\n",
		"sys/kernel/livepatch/livepatch_fix/vmlinux/cmdline_proc_show,1/": "",
		"sys/module/livepatch_fix/srcversion":                             "0123456789ABCDEF012345\n",
		"sys/module/livepatch_fix/notes/.note.kelp":                       kelpNote("kelp.description=proc: mask password= values in /proc/cmdline\n\nThe command line is world-readable.", "kelp.cve=CVE-2024-1086"),
	}
}

// kelpNote is the note section a kelp-built module carries, with the given
// "key=value" entries, as /sys/module/NAME/notes shows it.
func kelpNote(entries ...string) string {
	desc := strings.Join(entries, "\x00") + "\x00"
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(kmod.NoteOwner) + 1), uint32(len(desc)), kmod.NoteType})
	b.WriteString(kmod.NoteOwner + "\x00\x00\x00\x00")
	b.WriteString(desc)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	return b.String()
}

func newFakeHost(t *testing.T, edit func(map[string]string)) *fakeHost {
	t.Helper()
	h := &fakeHost{dir: t.TempDir(), files: capableFiles()}
	if edit != nil {
		edit(h.files)
	}
	h.root = h.path("root")
	for name, content := range h.files {
		p := filepath.Join(h.root, name)
		if strings.HasSuffix(name, "/") {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.store = h.path("store")
	st := store.New(h.store)
	st.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	fixA := h.module(t, "fix_a", rel, true, "kelp.description=ext4: check eh_depth before the lookup\n\nA corrupted extent header is read past its end.", "kelp.cve=CVE-2023-52619", "kelp.cve=CVE-2024-1086")
	if _, err := st.Install(rel, fixA, store.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	h.module(t, "fix_b", rel, true)
	h.module(t, "plain", rel, false)
	h.module(t, "other", "6.1.0-99-amd64", true)
	return h
}

// module writes a module file NAME.ko into the test's directory.
func (h *fakeHost) module(t *testing.T, name, release string, lp bool, modinfo ...string) string {
	t.Helper()
	data, err := os.ReadFile(testenv.FakeModule(t, name, release, lp, modinfo...))
	if err != nil {
		t.Fatal(err)
	}
	p := h.path(name + ".ko")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (h *fakeHost) quarantine(t *testing.T, name string) {
	t.Helper()
	if err := store.New(h.store).QuarantinePatch(rel, name, "boot 6a9b4a52 did not settle after applying it"); err != nil {
		t.Fatal(err)
	}
}

// result is one run of kelp.
type result struct {
	exit           int
	stdout, stderr string
}

var runMu sync.Mutex

// kelp runs the command in this process against h.
func (h *fakeHost) kelp(t *testing.T, args ...string) result {
	t.Helper()
	runMu.Lock()
	defer runMu.Unlock()
	saved := livepatch.Host
	livepatch.Host = livepatch.System{Root: h.root}
	defer func() { livepatch.Host = saved }()
	t.Setenv(envStore, h.store)
	var stdout, stderr bytes.Buffer
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$DIR", h.dir)
	}
	code := run(args, &stdout, &stderr)
	return result{exit: code, stdout: stdout.String(), stderr: stderr.String()}
}

// lastLine is the last line on stderr: the reason for a failure.
func (r result) lastLine() string {
	s := strings.TrimRight(r.stderr, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func TestUsageErrors(t *testing.T) {
	h := newFakeHost(t, nil)
	cases := []struct {
		args []string
		name string // the command the message must name
	}{
		{[]string{}, "kelp"},
		{[]string{"bogus"}, "bogus"},
		{[]string{"--bogus"}, "--bogus"},
		{[]string{"list", "extra"}, "kelp list"},
		{[]string{"check", "extra"}, "kelp check"},
		{[]string{"version", "extra"}, "kelp version"},
		{[]string{"status", "extra"}, "kelp status"},
		{[]string{"info"}, "info:"},
		{[]string{"info", "a", "b"}, "info:"},
		{[]string{"force"}, "force:"},
		{[]string{"force", "--bogus", "x"}, "force:"},
		{[]string{"install"}, "install:"},
		{[]string{"install", "--keep-quarantine", "$DIR/fix_b.ko"}, "install:"},
		{[]string{"uninstall"}, "uninstall:"},
		{[]string{"unquarantine", "a", "b"}, "unquarantine:"},
		{[]string{"sign", "$DIR/fix_b.ko"}, "sign:"},
		{[]string{"sign", "--key", "k", "--cert", "c", "--hash", "md5", "$DIR/fix_b.ko"}, "sign:"},
		{[]string{"build"}, "build:"},
		{[]string{"build", "--sign-key", "k", "x.patch"}, "build:"},
		{[]string{"build", "-j", "many", "x.patch"}, "build:"},
		{[]string{"build", "--cve", "CVE-24-1086", "x.patch"}, "build: --cve"},
		{[]string{"build", "--cve", "CVE-2024-1086", "--cve", "log4shell", "x.patch"}, "build: --cve"},
		{[]string{"build", "-k", "a", "-k", "a", "x.patch"}, "build: kernel a is given twice"},
		{[]string{"build", "-k", "a", "-k", "b", "--config", "c", "x.patch"}, "build: --config"},
		{[]string{"build", "--kernels", "$DIR/none", "x.patch"}, "build: kernel list"},
		{[]string{"build", "--symbols", "$DIR/fix_b.ko", "--symbols", "$DIR/fix_b.ko", "x.patch"}, "build: several --symbols"},
		{[]string{"build", "-k", "a", "-k", "b", "--symbols", "$DIR/fix_b.ko", "x.patch"}, "names no kernel"},
		{[]string{"build", "-k", "a", "--symbols", "$DIR", "x.patch"}, "names no kernel"},
		{[]string{"package"}, "package:"},
		{[]string{"package", "--format", "zip", "$DIR/fix_b.ko"}, "package:"},
		{[]string{"package", "--self", "$DIR/fix_b.ko"}, "package:"},
		{[]string{"package", "--name", "x", "$DIR/fix_b.ko", "$DIR/other.ko"}, "package: --name"},
		{[]string{"load"}, "load:"},
		{[]string{"load", "--boot", "x.ko"}, "load:"},
		{[]string{"load", "--all", "x.ko"}, "load:"},
		{[]string{"load", "--on-timeout", "later", "x.ko"}, "load: --on-timeout"},
		{[]string{"load", "--on-timeout", "force", "x.ko"}, "load: --on-timeout"},
		{[]string{"load", "--timeout", "soon", "x.ko"}, "load:"},
		{[]string{"load", "a=1", "x.ko"}, "load:"},
		{[]string{"unload"}, "unload:"},
		{[]string{"unload", "--all", "x"}, "unload:"},
		{[]string{"symbols", "extra"}, "kelp symbols"},
		{[]string{"completion", "tcsh"}, "completion"},
	}
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		t.Run(name, func(t *testing.T) {
			before := treeOf(t, h.dir)
			r := h.kelp(t, append([]string{}, c.args...)...)
			if r.exit != exitUsage {
				t.Errorf("exit %d, want %d\nstderr: %s", r.exit, exitUsage, r.stderr)
			}
			if !strings.HasPrefix(r.lastLine(), "kelp: ") || !strings.Contains(r.lastLine(), c.name) || !strings.Contains(r.lastLine(), "--help") {
				t.Errorf("last line %q does not name %q and where its usage is", r.lastLine(), c.name)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			if after := treeOf(t, h.dir); after != before {
				t.Errorf("a usage error changed files:\nbefore %s\nafter  %s", before, after)
			}
			// The same under --json: one document, the usage error.
			r = h.kelp(t, append(append([]string{}, c.args...), "--json")...)
			doc := oneDocument(t, r)
			e := errorObject(t, doc)
			if e["kind"] != kindUsage || e["exit_code"] != float64(exitUsage) || r.exit != exitUsage {
				t.Errorf("--json: exit %d, error %v", r.exit, e)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	h := newFakeHost(t, nil)
	r := h.kelp(t, "--version")
	if r.exit != 0 || r.stdout != "kelp "+version+"\n" || r.stderr != "" {
		t.Errorf("kelp --version: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
}

// jsonCase is one command under --json, on a fresh fake host.
type jsonCase struct {
	golden string
	args   []string
	exit   int
	setup  func(t *testing.T, h *fakeHost)
	edit   func(files map[string]string)
	// check looks further at the document and the host after the run.
	check func(t *testing.T, h *fakeHost, doc map[string]any)
}

func jsonCases() []jsonCase {
	return []jsonCase{
		{golden: "version", args: []string{"version"}},
		{golden: "check", args: []string{"check"}, check: func(t *testing.T, _ *fakeHost, doc map[string]any) {
			if doc["livepatch_possible"] != true {
				t.Errorf("livepatch_possible = %v", doc["livepatch_possible"])
			}
		}},
		{golden: "check-impossible", args: []string{"check"}, exit: 1, edit: func(m map[string]string) { m["proc/sys/kernel/ftrace_enabled"] = "0\n" },
			check: func(t *testing.T, _ *fakeHost, doc map[string]any) {
				for _, c := range doc["checks"].([]any) {
					c := c.(map[string]any)
					if c["passed"] == true && c["blocks_livepatch"] == true {
						t.Errorf("a passing check blocks live patching: %v", c)
					}
					if c["name"] == "ftrace_enabled" && c["blocks_livepatch"] != true {
						t.Errorf("ftrace_enabled=0 does not block: %v", c)
					}
				}
			}},
		{golden: "list", args: []string{"list"}},
		{golden: "info-file", args: []string{"info", "$DIR/fix_b.ko"}, check: func(t *testing.T, _ *fakeHost, doc map[string]any) {
			f := doc["file"].(map[string]any)
			if f["is_livepatch"] != true || f["vermagic"] != rel+" SMP preempt mod_unload modversions" {
				t.Errorf("file = %v", f)
			}
		}},
		{golden: "info-loaded", args: []string{"info", "livepatch_fix"}},
		{golden: "info-installed", args: []string{"info", "fix_a"}, check: func(t *testing.T, _ *fakeHost, doc map[string]any) {
			if doc["installed"] == nil || doc["loaded"] != nil {
				t.Errorf("installed %v, loaded %v", doc["installed"], doc["loaded"])
			}
		}},
		{golden: "info-missing", args: []string{"info", "fix_z"}, exit: 1},
		{golden: "load-not-installed", args: []string{"load", "fix_z"}, exit: 1},
		{golden: "load-refused", args: []string{"load", "$DIR/plain.ko"}, exit: 1},
		{golden: "load-quarantined", args: []string{"load", "fix_a"}, exit: 1, setup: func(t *testing.T, h *fakeHost) { h.quarantine(t, "fix_a") }},
		{golden: "load-skip-quarantined", args: []string{"load", "--skip-quarantined", "fix_a"}, setup: func(t *testing.T, h *fakeHost) { h.quarantine(t, "fix_a") }},
		{golden: "load-all-disabled", args: []string{"load", "--all", "--boot"}, edit: func(m map[string]string) { m["proc/cmdline"] = "root=/dev/vda kelp.enable=0\n" }},
		{golden: "load-all-empty", args: []string{"load", "--all"}, edit: func(m map[string]string) { m["proc/sys/kernel/osrelease"] = "6.1.0-99-amd64\n" }},
		{golden: "unload-not-loaded", args: []string{"unload", "fix_z"}, exit: 1},
		{golden: "force-without-yes", args: []string{"force", "livepatch_fix"}, exit: 1},
		{golden: "install", args: []string{"install", "$DIR/fix_b.ko"}},
		{golden: "install-wrong-kernel", args: []string{"install", "$DIR/other.ko"}, exit: 1},
		{golden: "install-exists", args: []string{"install", "$DIR/fix_a.ko"}, exit: 1},
		{golden: "install-keep-quarantine", args: []string{"install", "--force", "--keep-quarantine", "$DIR/fix_a.ko"},
			setup: func(t *testing.T, h *fakeHost) { h.quarantine(t, "fix_a") },
			check: func(t *testing.T, h *fakeHost, _ map[string]any) {
				if qs, _ := store.New(h.store).Quarantined(rel); len(qs) != 1 {
					t.Errorf("quarantine lifted by a reinstall: %v", qs)
				}
			}},
		{golden: "uninstall", args: []string{"uninstall", "fix_a"}},
		{golden: "uninstall-missing", args: []string{"uninstall", "-k", "6.1.0-99-amd64", "fix_a"}, exit: 1, check: func(t *testing.T, h *fakeHost, _ map[string]any) {
			if _, err := os.Stat(filepath.Join(h.store, "6.1.0-99-amd64")); !os.IsNotExist(err) {
				t.Errorf("a failed uninstall created the store directory of its kernel: %v", err)
			}
		}},
		{golden: "unquarantine", args: []string{"unquarantine", "fix_a"}, setup: func(t *testing.T, h *fakeHost) { h.quarantine(t, "fix_a") }},
		{golden: "unquarantine-not-quarantined", args: []string{"unquarantine", "fix_a"}, exit: 1},
		{golden: "status", args: []string{"status"}, setup: func(t *testing.T, h *fakeHost) { h.quarantine(t, "fix_a") }},
		{golden: "status-prometheus-no-dir", args: []string{"status", "--prometheus", "$DIR/no/such/dir/kelp.prom"}, exit: 1, check: func(t *testing.T, h *fakeHost, _ map[string]any) {
			if _, err := os.Stat(h.path("no")); !os.IsNotExist(err) {
				t.Errorf("status --prometheus created a directory: %v", err)
			}
		}},
		{golden: "status-prometheus", args: []string{"status", "--prometheus", "$DIR/kelp.prom"}, check: func(t *testing.T, h *fakeHost, _ map[string]any) {
			checkMetrics(t, h, "kelp_patches_installed 1",
				"kelp_patches_not_loaded 1",
				"kelp_patches_fixes_unknown 0",
				`kelp_patch_info{patch="livepatch_fix",cve="CVE-2024-1086",description="proc: mask password= values in /proc/cmdline"} 1`,
				`kelp_cve_fixed{cve="CVE-2024-1086"} 1`,
				`kelp_cve_not_loaded{cve="CVE-2023-52619"} 1`)
		}},
		// A loaded patch without kelp's note (another tool built it, or a
		// kelp that recorded nothing) may fix anything: unknown, not none.
		{golden: "status-fixes-unknown", args: []string{"status", "--prometheus", "$DIR/kelp.prom"}, edit: func(m map[string]string) {
			delete(m, "sys/module/livepatch_fix/notes/.note.kelp")
		}, check: func(t *testing.T, h *fakeHost, doc map[string]any) {
			if u, _ := doc["fixes_unknown"].([]any); len(u) != 1 || u[0] != "livepatch_fix" {
				t.Errorf("fixes_unknown = %v, want [livepatch_fix]", doc["fixes_unknown"])
			}
			if fixed, _ := doc["fixed_cves"].([]any); fixed == nil || len(fixed) != 0 {
				t.Errorf("fixed_cves = %v, want []", doc["fixed_cves"])
			}
			checkMetrics(t, h, "kelp_patches_fixes_unknown 1")
		}},
		// A patch in its patching transition fixes nothing yet; how long
		// the transition has been under way comes from the kernel log.
		{golden: "status-transition", args: []string{"status", "--prometheus", "$DIR/kelp.prom"}, edit: func(m map[string]string) {
			m["sys/kernel/livepatch/livepatch_fix/transition"] = "1\n"
			m["dev/kmsg"] = "6,900,1000000,-;livepatch: enabling patch 'livepatch_fix'\n" +
				"5,901,1250000,-;livepatch: 'livepatch_fix': starting patching transition\n SUBSYSTEM=x\n" +
				"5,902,1300000,-;livepatch: 'other': starting patching transition\n"
			m["proc/uptime"] = "31.75 60.00\n"
		}, check: func(t *testing.T, h *fakeHost, doc map[string]any) {
			if fixed, _ := doc["fixed_cves"].([]any); fixed == nil || len(fixed) != 0 {
				t.Errorf("fixed_cves = %v during the patching transition; want []", doc["fixed_cves"])
			}
			checkMetrics(t, h, "kelp_transition_in_progress 1", "kelp_transition_seconds 30.5",
				`kelp_cve_not_loaded{cve="CVE-2023-52619"} 1`, `kelp_cve_not_loaded{cve="CVE-2024-1086"} 1`)
			if data, err := os.ReadFile(h.path("kelp.prom")); err != nil || strings.Contains(string(data), "kelp_patch_info{") || strings.Contains(string(data), "kelp_cve_fixed{") {
				t.Errorf("metrics count a patch in transition as a fix (read: %v):\n%s", err, data)
			}
		}},
		{golden: "sign", args: []string{"sign", "--key", "$DIR/key.pem", "--cert", "$DIR/cert.pem", "-o", "$DIR/signed.ko", "$DIR/fix_b.ko"}, setup: writeKeyPair,
			check: func(t *testing.T, h *fakeHost, doc map[string]any) {
				if s, _ := doc["signature"].(map[string]any); s == nil || s["signer"] != "kelp test signing key" {
					t.Errorf("signature = %v", doc["signature"])
				}
			}},
		{golden: "sign-bad-key", args: []string{"sign", "--key", "$DIR/fix_a.ko", "--cert", "$DIR/fix_a.ko", "$DIR/fix_b.ko"}, exit: 1},
		{golden: "package-missing-file", args: []string{"package", "$DIR/none.ko", "-o", "$DIR/dist"}, exit: 1, setup: withHelper},
		{golden: "package", args: []string{"package", "$DIR/fix_b.ko", "-o", "$DIR/dist"}, setup: withHelper, check: func(t *testing.T, h *fakeHost, doc map[string]any) {
			if _, err := os.Stat(doc["file"].(string)); err != nil {
				t.Error(err)
			}
		}},
		{golden: "package-several", args: []string{"package", "$DIR/fix_b.ko", "$DIR/other.ko", "-o", "$DIR/dist"}, setup: withHelper, check: func(t *testing.T, h *fakeHost, doc map[string]any) {
			ps, _ := doc["packages"].([]any)
			if len(ps) != 2 {
				t.Fatalf("packages: %v", doc["packages"])
			}
			for i, want := range []string{"kelp-patch-fix-b-6.1.0-56-amd64", "kelp-patch-other-6.1.0-99-amd64"} {
				p, _ := ps[i].(map[string]any)
				if p["name"] != want {
					t.Errorf("packages[%d] is %v, want %s", i, p["name"], want)
				}
				if _, err := os.Stat(p["file"].(string)); err != nil {
					t.Error(err)
				}
			}
		}},
		{golden: "package-several-missing", args: []string{"package", "$DIR/fix_b.ko", "$DIR/none.ko", "-o", "$DIR/dist"}, exit: 1, setup: withHelper, check: func(t *testing.T, h *fakeHost, doc map[string]any) {
			if debs, _ := filepath.Glob(h.path("dist/*")); len(debs) != 0 {
				t.Errorf("a failed set of packages left %v", debs)
			}
		}},
		{golden: "build-missing-patch", args: []string{"build", "$DIR/none.patch"}, exit: 1},
		{golden: "build-kernels-missing-patch", args: []string{"build", "-k", "6.1.0-56-amd64", "-k", "6.1.0-56-cloud-amd64", "$DIR/none.patch"}, exit: 1,
			check: func(t *testing.T, h *fakeHost, doc map[string]any) {
				ks, _ := doc["kernels"].([]any)
				if len(ks) != 2 {
					t.Fatalf("kernels: %v", doc["kernels"])
				}
				for i, want := range []string{"6.1.0-56-amd64", "6.1.0-56-cloud-amd64"} {
					k, _ := ks[i].(map[string]any)
					e, _ := k["error"].(map[string]any)
					if k["kernel"] != want || e == nil || !strings.Contains(e["message"].(string), "none.patch") {
						t.Errorf("kernels[%d] = %v, want kernel %s failing on the missing patch", i, k, want)
					}
				}
			}},
	}
}

// checkMetrics reads the Prometheus file kelp status wrote and wants each
// line in it, and a HELP and a TYPE line for every metric it has.
func checkMetrics(t *testing.T, h *fakeHost, want ...string) {
	t.Helper()
	data, err := os.ReadFile(h.path("kelp.prom"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("metrics have no line %q:\n%s", w, data)
		}
	}
	help, typ := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[0] == "#" && f[1] == "HELP":
			help[f[2]] = true
		case len(f) == 4 && f[0] == "#" && f[1] == "TYPE":
			typ[f[2]] = true
		default:
			name, _, _ := strings.Cut(f[0], "{")
			if !help[name] || !typ[name] {
				t.Errorf("metric %s has no HELP or TYPE line before it", name)
			}
		}
	}
}

func writeKeyPair(t *testing.T, h *fakeHost) {
	t.Helper()
	// RSA: its signatures have one size, so the golden file holds.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "kelp test signing key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		SubjectKeyId: []byte{1, 2, 3, 4},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(h.path("cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(h.path("key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// TestJSONContract runs every command under --json: exactly one document
// on stdout with schema_version, the exit code the error object names,
// snake_case fields, durations as float seconds, no trailing spaces, and
// the document its golden file holds.
func TestJSONContract(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range jsonCases() {
		covered[c.args[0]] = true
		t.Run(c.golden, func(t *testing.T) {
			h := newFakeHost(t, c.edit)
			if c.setup != nil {
				c.setup(t, h)
			}
			r := h.kelp(t, append(append([]string{}, c.args...), "--json")...)
			if r.exit != c.exit {
				t.Errorf("exit %d, want %d\nstderr: %s", r.exit, c.exit, r.stderr)
			}
			doc := oneDocument(t, r)
			if c.exit == 0 {
				if _, ok := doc["error"]; ok {
					t.Errorf("success with an error object: %v", doc["error"])
				}
				if r.stderr != "" {
					t.Errorf("stderr on success under --json: %q", r.stderr)
				}
			} else {
				e := errorObject(t, doc)
				if e["exit_code"] != float64(r.exit) {
					t.Errorf("error.exit_code %v, exit %d", e["exit_code"], r.exit)
				}
				if want := "kelp: " + e["message"].(string); r.lastLine() != want {
					t.Errorf("last line on stderr %q, want %q", r.lastLine(), want)
				}
			}
			vocabulary(t, "", doc)
			if c.check != nil {
				c.check(t, h, doc)
			}
			golden(t, c.golden, normalize(h, r.stdout))
		})
	}
	root := newRootCmd(&globals{stdout: io.Discard, stderr: io.Discard})
	for _, c := range root.Commands() {
		if c.Annotations[textOnly] == "" && !c.Hidden && !covered[c.Name()] {
			t.Errorf("command %s has no --json case", c.Name())
		}
	}
}

// TestTextOnlyCommands: commands whose output is text refuse --json as a
// usage error, and work without it.
func TestTextOnlyCommands(t *testing.T) {
	h := newFakeHost(t, nil)
	r := h.kelp(t, "symbols")
	// The dump names the kernel it was taken on, then is kallsyms as is.
	want := ksym.DumpHeader{Release: strings.TrimSpace(h.files["proc/sys/kernel/osrelease"])}.String() + "\n" + h.files["proc/kallsyms"]
	if r.exit != 0 || r.stdout != want {
		t.Errorf("kelp symbols: exit %d, stdout %q; want %q", r.exit, r.stdout, want)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := h.kelp(t, "completion", sh)
		if r.exit != 0 || !strings.Contains(r.stdout, "kelp") {
			t.Errorf("kelp completion %s: exit %d, %d bytes", sh, r.exit, len(r.stdout))
		}
	}
}

// TestCompletion: patch names and kernel releases are completed from the
// running system and the store.
func TestCompletion(t *testing.T) {
	h := newFakeHost(t, nil)
	store.New(h.store).Install("6.1.0-99-amd64", h.path("other.ko"), store.InstallOptions{})
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "uninstall", ""}, []string{"fix_a"}},
		{[]string{"__complete", "load", ""}, []string{"fix_a", "livepatch_fix"}},
		{[]string{"__complete", "unload", ""}, []string{"livepatch_fix"}},
		{[]string{"__complete", "info", ""}, []string{"fix_a", "livepatch_fix"}},
		{[]string{"__complete", "uninstall", "-k", "6.1.0-99-amd64", ""}, []string{"other"}},
		{[]string{"__complete", "install", "-k", ""}, []string{"6.1.0-56-amd64", "6.1.0-99-amd64"}},
	} {
		r := h.kelp(t, c.args...)
		var got []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		for _, w := range c.want {
			if !contains(got, w) {
				t.Errorf("%v: completions %v lack %s", c.args, got, w)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// oneDocument parses stdout as exactly one JSON object with the current
// schema_version.
func oneDocument(t *testing.T, r result) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON document:\n%s", r.stdout)
	}
	if doc["schema_version"] != float64(schemaVersion) {
		t.Errorf("schema_version = %v, want %d", doc["schema_version"], schemaVersion)
	}
	return doc
}

// errorObject returns the document's error object, checking its shape.
func errorObject(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	e, ok := doc["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %v", doc)
	}
	kinds := []string{kindUsage, kindRefused, kindFailed, kindKernel, kindReverted, kindIncomplete}
	if k, _ := e["kind"].(string); !contains(kinds, k) {
		t.Errorf("error.kind %v is not one of %v", e["kind"], kinds)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Errorf("error.message empty: %v", e)
	}
	for k := range e {
		if !contains([]string{"kind", "exit_code", "message", "blockers", "kernel_log", "refusals"}, k) {
			t.Errorf("error object has field %q outside its one shape", k)
		}
	}
	return e
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// vocabulary checks every field of v: snake_case names (modinfo keys are
// the module's own), durations as numbers of seconds, no string with
// surrounding spaces.
func vocabulary(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !snake.MatchString(k) && !strings.HasSuffix(path, ".modinfo") && !strings.HasSuffix(path, ".params") && !strings.HasSuffix(path, ".other_kernels") && !strings.HasSuffix(path, ".timings_seconds") {
				t.Errorf("field %s.%s is not snake_case", path, k)
			}
			if strings.HasSuffix(k, "_seconds") {
				if _, ok := x.(float64); !ok && !strings.HasSuffix(k, "timings_seconds") {
					t.Errorf("duration %s.%s = %v is not a number of seconds", path, k, x)
				}
			}
			if strings.Contains(k, "time") && !strings.HasSuffix(k, "_seconds") {
				t.Errorf("field %s.%s: durations end in _seconds, times in _at", path, k)
			}
			vocabulary(t, path+"."+k, x)
		}
	case []any:
		for _, x := range v {
			vocabulary(t, path+"[]", x)
		}
	case string:
		if strings.TrimSpace(v) != v {
			t.Errorf("%s = %q has surrounding white space", path, v)
		}
	}
}

var (
	timeRE  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	shaRE   = regexp.MustCompile(`"[0-9a-f]{64}"`)
	tmpRE   = regexp.MustCompile(`/tmp/[A-Za-z0-9_.-]+`)
	release = regexp.MustCompile(`"go1\.[0-9.]+[^"]*"`)
)

// normalize replaces what differs between runs: the test's directory,
// times other than the store's fixed clock, digests of generated files,
// the Go version.
func normalize(h *fakeHost, s string) string {
	s = strings.ReplaceAll(s, h.dir, "$DIR")
	s = timeRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "2026-01-02T03:04:05Z" {
			return m
		}
		return "$TIME"
	})
	s = shaRE.ReplaceAllLiteralString(s, `"$SHA256"`)
	s = release.ReplaceAllLiteralString(s, `"$GO"`)
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name+".json")
	if *update {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/kelp -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from its golden file (go test ./cmd/kelp -update rewrites it):\n--- want\n%s\n--- got\n%s", p, want, got)
	}
}

// treeOf lists the files below dir with their sizes, to prove a command
// changed nothing.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+":"+fi.Mode().String())
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestBuildKeepWorkOnFailure: a failed build with --keep-work names the
// directory it kept, before the reason on the last line.
func TestBuildKeepWorkOnFailure(t *testing.T) {
	h := newFakeHost(t, nil)
	t.Setenv("TMPDIR", t.TempDir())
	r := h.kelp(t, "build", "--keep-work", "-k", "6.1.0-56-amd64", "--config", "$DIR/none.config", "$DIR/none.patch")
	if r.exit == 0 || !strings.Contains(r.lastLine(), "none.patch") {
		t.Fatalf("exit %d, last line %q", r.exit, r.lastLine())
	}
	_, after, ok := strings.Cut(r.stderr, "work directory kept: ")
	dir, _, _ := strings.Cut(after, "\n")
	if !ok {
		t.Fatalf("the kept directory is not named:\n%s", r.stderr)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("kept directory %q: %v", dir, err)
	}
}
