package selftests

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// upstreamCase is one start_test ... check_result pair of a kernel
// selftest script, with its expected kernel log.
type upstreamCase struct {
	Script string
	Name   string
	Expect []string
}

var (
	assignRE    = regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=(\S+)$`)
	startTestRE = regexp.MustCompile(`^start_test "(.*)"$`)
	varRE       = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// parseSelftest reads the check_result expectations of a selftest script
// (tools/testing/selftests/livepatch/test-*.sh), expanding the script's
// variables as the shell would.
func parseSelftest(path string) ([]upstreamCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	script := path[strings.LastIndex(path, "/")+1:]
	vars := map[string]string{}
	var out []upstreamCase
	var name string
	var block []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if inBlock {
			end := strings.HasSuffix(line, `"`) && !strings.HasSuffix(line, `\"`)
			if end {
				line = strings.TrimSuffix(line, `"`)
			}
			block = append(block, line)
			if end {
				c := upstreamCase{Script: script, Name: name}
				for _, l := range block {
					c.Expect = append(c.Expect, expand(l, vars))
				}
				out = append(out, c)
				inBlock, block = false, nil
			}
			continue
		}
		if m := assignRE.FindStringSubmatch(line); m != nil {
			vars[m[1]] = m[2]
			continue
		}
		if m := startTestRE.FindStringSubmatch(line); m != nil {
			name = m[1]
			continue
		}
		if rest, ok := strings.CutPrefix(line, `check_result "`); ok {
			if name == "" {
				return nil, fmt.Errorf("%s: check_result before start_test", path)
			}
			inBlock = true
			if strings.HasSuffix(rest, `"`) && !strings.HasSuffix(rest, `\"`) {
				block = []string{strings.TrimSuffix(rest, `"`)}
				c := upstreamCase{Script: script, Name: name, Expect: []string{expand(block[0], vars)}}
				out = append(out, c)
				inBlock, block = false, nil
				continue
			}
			block = []string{rest}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if inBlock {
		return nil, fmt.Errorf("%s: unterminated check_result", path)
	}
	return out, nil
}

func expand(s string, vars map[string]string) string {
	s = varRE.ReplaceAllStringFunc(s, func(v string) string {
		m := varRE.FindStringSubmatch(v)
		name := m[1]
		if name == "" {
			name = m[2]
		}
		if val, ok := vars[name]; ok {
			return val
		}
		return v
	})
	return strings.ReplaceAll(s, `\"`, `"`)
}

// kelpTranscript turns an upstream expectation into the one the same
// scenario produces through kelp: only the command lines the scripts log
// differ (the kernel lines are untouched).
//
//   - "% modprobe M args": "% kelp load M.ko args" for a livepatch,
//     "% insmod M.ko args" for another module;
//   - "% echo 0 > /sys/kernel/livepatch/M/enabled" (disable_lp):
//     "% kelp unload M", which disables and also removes the module;
//   - "% rmmod M" of a livepatch: dropped after a disable (kelp unload
//     removed it already), else "% kelp unload M" (a replaced patch's
//     module is just removed);
//   - "modprobe: ERROR: could not insert 'M': Reason": kelp's last line
//     (kelpErrors[M]) for a livepatch, busybox insmod's message otherwise
//     (after the kernel's lines a second time: busybox retries a failed
//     finit_module with init_module).
//
// 6.12's scripts load modules from the scripts' directory with insmod
// ("% insmod test_modules/M.ko args", "insmod: ERROR: could not insert
// module test_modules/M.ko: Reason"): those lines are read as 6.1's
// modprobe lines first.
func kelpTranscript(expect []string, kelpErrors map[string]string) ([]string, error) {
	disabled := map[string]bool{}
	var out []string
	for _, l := range expect {
		l = asModprobe(l)
		switch {
		case strings.HasPrefix(l, "% modprobe "):
			f := strings.Fields(strings.TrimPrefix(l, "% modprobe "))
			m, args := f[0], f[1:]
			cmd := "% insmod "
			if livepatchModules[m] {
				cmd = "% kelp load "
				disabled[m] = false
			}
			out = append(out, strings.TrimSpace(cmd+m+".ko "+strings.Join(args, " ")))
		case strings.HasPrefix(l, "% echo 0 > /sys/kernel/livepatch/"):
			m := strings.TrimSuffix(strings.TrimPrefix(l, "% echo 0 > /sys/kernel/livepatch/"), "/enabled")
			disabled[m] = true
			out = append(out, "% kelp unload "+m)
		case strings.HasPrefix(l, "% rmmod "):
			m := strings.TrimPrefix(l, "% rmmod ")
			switch {
			case !livepatchModules[m]:
				out = append(out, l)
			case !disabled[m]:
				out = append(out, "% kelp unload "+m)
			}
		case strings.HasPrefix(l, "modprobe: ERROR: could not insert '"):
			rest := strings.TrimPrefix(l, "modprobe: ERROR: could not insert '")
			m, reason, ok := strings.Cut(rest, "': ")
			if !ok {
				return nil, fmt.Errorf("unexpected modprobe error line %q", l)
			}
			if livepatchModules[m] {
				msg, ok := kelpErrors[m]
				if !ok {
					return nil, fmt.Errorf("no kelp error line given for failing load of %s", m)
				}
				out = append(out, msg)
			} else {
				// busybox insmod tries finit_module, then init_module:
				// the kernel goes through the failing load twice.
				start := len(out)
				for start > 0 && !strings.HasPrefix(out[start-1], "% insmod "+m+".ko") {
					start--
				}
				out = append(out, out[start:]...)
				out = append(out, "insmod: can't insert '"+guestKO+"/"+m+".ko': "+reason)
			}
		default:
			out = append(out, l)
		}
	}
	return out, nil
}

var (
	insmodRE      = regexp.MustCompile(`^% insmod test_modules/([^ /]+)\.ko\b(.*)$`)
	insmodErrorRE = regexp.MustCompile(`^insmod: ERROR: could not insert module test_modules/([^ /]+)\.ko: (.*)$`)
)

// asModprobe rewrites a 6.12 script's insmod command or error line as the
// 6.1 scripts' modprobe line of the same module; other lines are kept.
func asModprobe(l string) string {
	if m := insmodRE.FindStringSubmatch(l); m != nil {
		return "% modprobe " + m[1] + m[2]
	}
	if m := insmodErrorRE.FindStringSubmatch(l); m != nil {
		return "modprobe: ERROR: could not insert '" + m[1] + "': " + m[2]
	}
	return l
}

var timestampRE = regexp.MustCompile(`^\[[ 0-9.]*\] `)

// filterLog keeps the kernel log lines the selftests compare: those
// mentioning "livepatch:" or "test_klp", without taint notices, with
// timestamps stripped (functions.sh check_result).
func filterLog(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		l = timestampRE.ReplaceAllString(strings.TrimRight(l, "\r"), "")
		if !strings.Contains(l, "livepatch:") && !strings.Contains(l, "test_klp") {
			continue
		}
		if strings.Contains(l, "tainting kernel") || strings.Contains(l, "taints kernel") {
			continue
		}
		out = append(out, l)
	}
	return out
}
