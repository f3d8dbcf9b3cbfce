package selftests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/vmtest"
)

// upstreamCases reads every check_result of the selftest scripts of a
// kernel tree, keyed by "script/test name".
func upstreamCases(t *testing.T, tree string, scripts []string) map[string]upstreamCase {
	t.Helper()
	cases := map[string]upstreamCase{}
	for _, s := range scripts {
		cs, err := parseSelftest(filepath.Join(tree, selftestDir, s))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			cases[c.Script+"/"+c.Name] = c
		}
	}
	return cases
}

// TestKernelSelftests runs every scenario of Linux 6.1's livepatch
// selftests in one boot of Debian 12's kernel, each livepatch loaded,
// disabled and unloaded by kelp, and compares each scenario's kernel log
// with the transcript the upstream script expects.
func TestKernelSelftests(t *testing.T) { runSelftests(t, linux61) }

// TestKernelSelftests612 does the same with Linux 6.12's scripts and test
// modules (built in the trixie build root with gcc-14) in one boot of
// Debian 13's kernel.
func TestKernelSelftests612(t *testing.T) { runSelftests(t, linux612) }

func runSelftests(t *testing.T, kl *kernelLine) {
	b := modulesOf(t, kl)
	cases := upstreamCases(t, b.tree, kl.Scripts)
	covered := map[string]bool{}
	// Scenarios run in one boot, those that need a one-CPU guest (see
	// scenario.OneCPU) in a second.
	steps := map[bool][]vmtest.Step{}
	for i, sc := range kl.Scenarios {
		key := sc.Script + "/" + sc.Name
		if _, ok := cases[key]; !ok {
			t.Fatalf("scenario %q is not in the kernel's %s", sc.Name, sc.Script)
		}
		if covered[key] {
			t.Fatalf("two scenarios for %q", key)
		}
		covered[key] = true
		one := sc.OneCPU != ""
		if steps[one] == nil {
			steps[one] = []vmtest.Step{{Name: "setup", Shell: setupStep}}
		}
		steps[one] = append(steps[one], vmtest.Step{
			Name:    key,
			Shell:   fmt.Sprintf("%sstart_test %d '%s'\n%s\nexit 0\n", prelude, i, sc.Name, sc.Body),
			Timeout: 3 * time.Minute,
		})
	}
	for key := range cases {
		if !covered[key] {
			t.Errorf("upstream selftest %q has no kelp scenario", key)
		}
	}
	results := map[bool]*vmtest.Result{}
	for _, one := range []bool{false, true} {
		if steps[one] == nil {
			continue
		}
		cfg := vmtest.Config{Kernel: b.kernel, Files: b.files(), Steps: steps[one], Timeout: 20 * time.Minute}
		if one {
			cfg.CPUs = 1
		}
		results[one] = vmtest.RunT(t, cfg)
		results[one].MustStep(t, "setup")
	}
	for _, sc := range kl.Scenarios {
		key := sc.Script + "/" + sc.Name
		t.Run(key, func(t *testing.T) {
			want, err := kelpTranscript(cases[key].Expect, sc.KelpErrors)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Adjust != nil {
				want = sc.Adjust(want)
			}
			st, ok := results[sc.OneCPU != ""].Step(key)
			if !ok {
				t.Fatalf("scenario did not run")
			}
			got := filterLog(st.Stdout)
			if sc.Actual != nil {
				got = sc.Actual(t, got)
			}
			if d := lineDiff(want, got); d != "" {
				t.Errorf("kernel log differs from the selftest's transcript (-want +got):\n%s", d)
			}
			if st.Exit != 0 || st.Error != "" {
				t.Errorf("scenario failed (exit %d%s); kelp and helpers said:\n%s", st.Exit, st.Error, st.Stderr)
			}
			if t.Failed() {
				t.Logf("stderr of the scenario:\n%s", st.Stderr)
			} else {
				t.Logf("%d transcript lines match (%s)", len(got), st.Duration.Round(time.Millisecond))
			}
		})
	}
}

// lineDiff shows where two line lists part: common lines with "  ",
// expected-only with "-", actual-only with "+" (longest common
// subsequence); "" when they are equal.
func lineDiff(want, got []string) string {
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return ""
	}
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			fmt.Fprintf(&b, "  %s\n", want[i])
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&b, "+ %s\n", got[j])
			j++
		default:
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
		}
	}
	return b.String()
}
