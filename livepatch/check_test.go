package livepatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystem builds a /proc, /sys, /boot tree under a temp dir.
func fakeSystem(t *testing.T, files map[string]string) System {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return System{Root: root}
}

func capable() map[string]string {
	return map[string]string{
		"proc/sys/kernel/osrelease":                "6.1.0-56-amd64\n",
		"boot/config-6.1.0-56-amd64":               "CONFIG_LIVEPATCH=y\nCONFIG_HAVE_RELIABLE_STACKTRACE=y\n# CONFIG_FOO is not set\n",
		"sys/kernel/livepatch/":                    "",
		"proc/sys/kernel/ftrace_enabled":           "1\n",
		"proc/sys/kernel/modules_disabled":         "0\n",
		"proc/sys/kernel/tainted":                  "0\n",
		"sys/kernel/security/lockdown":             "[none] integrity confidentiality\n",
		"sys/module/module/parameters/sig_enforce": "N\n",
	}
}

func find(r Report, name string) CheckResult {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return CheckResult{Name: "missing " + name}
}

func TestCheckCapable(t *testing.T) {
	r := fakeSystem(t, capable()).Check()
	if !r.LivepatchPossible || r.Kernel != "6.1.0-56-amd64" || r.Reason != "" {
		t.Fatalf("capable system: %+v", r)
	}
	for _, c := range r.Checks {
		if !c.OK {
			t.Errorf("check %s not ok on a capable system: %s", c.Name, c.Detail)
		}
	}
}

func TestCheckFailures(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(map[string]string)
		check    string
		possible bool
		detail   string
	}{
		{"no livepatch", func(m map[string]string) {
			delete(m, "sys/kernel/livepatch/")
			m["boot/config-6.1.0-56-amd64"] = "# CONFIG_LIVEPATCH is not set\n"
		}, "livepatch", false, "without CONFIG_LIVEPATCH"},
		{"ftrace off", func(m map[string]string) { m["proc/sys/kernel/ftrace_enabled"] = "0\n" }, "ftrace_enabled", false, "kernel.ftrace_enabled=1"},
		{"modules disabled", func(m map[string]string) { m["proc/sys/kernel/modules_disabled"] = "1\n" }, "module_loading", false, "disabled"},
		{"lockdown", func(m map[string]string) { m["sys/kernel/security/lockdown"] = "none [integrity] confidentiality\n" }, "lockdown", true, "integrity: only modules signed"},
		{"sig enforce", func(m map[string]string) { m["sys/module/module/parameters/sig_enforce"] = "Y\n" }, "module_sig_enforce", true, "enforced"},
		{"tainted", func(m map[string]string) { m["proc/sys/kernel/tainted"] = "45056\n" }, "taint", true, "O (out-of-tree module loaded), E (unsigned module loaded), K (kernel live patched)"},
		{"no config", func(m map[string]string) { delete(m, "boot/config-6.1.0-56-amd64") }, "reliable_stacktrace", true, "unknown: no kernel config"},
		{"in transition", func(m map[string]string) {
			m["sys/kernel/livepatch/p1/enabled"] = "1\n"
			m["sys/kernel/livepatch/p1/transition"] = "1\n"
		}, "patches", true, "p1 (enabled, in transition)"},
		{"no proc", func(m map[string]string) {
			for k := range m {
				if strings.HasPrefix(k, "proc/") {
					delete(m, k)
				}
			}
		}, "ftrace_enabled", false, "no /proc/sys/kernel/ftrace_enabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := capable()
			tc.edit(files)
			r := fakeSystem(t, files).Check()
			c := find(r, tc.check)
			if c.OK {
				t.Errorf("check %s ok, want a finding", tc.check)
			}
			if !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("check %s detail %q lacks %q", tc.check, c.Detail, tc.detail)
			}
			if r.LivepatchPossible != tc.possible {
				t.Errorf("livepatch_possible = %v, want %v (reason %q)", r.LivepatchPossible, tc.possible, r.Reason)
			}
			if !tc.possible && r.Reason == "" {
				t.Errorf("impossible without a reason")
			}
		})
	}
}

func TestTaintString(t *testing.T) {
	if got := TaintString(1<<12 | 1<<13 | 1<<15); got != "------------OE-K---" {
		t.Errorf("TaintString = %q", got)
	}
	if f := DecodeTaint(1 << 40); len(f) != 1 || f[0].Letter != '?' {
		t.Errorf("unknown bit decoded as %+v", f)
	}
}
