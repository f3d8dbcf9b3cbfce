package livepatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// CheckResult is one line of `kelp check`.
type CheckResult struct {
	Name   string
	OK     bool
	Detail string
	// Blocking marks checks whose failure makes live patching impossible;
	// the others describe conditions a patch must satisfy (e.g. a
	// signature) or that an admin should know about.
	Blocking bool
}

// checkJSON is CheckResult in kelp's JSON: blocks_livepatch is true only
// for a failed check that makes live patching impossible.
type checkJSON struct {
	Name            string `json:"name"`
	Passed          bool   `json:"passed"`
	Detail          string `json:"detail"`
	BlocksLivepatch bool   `json:"blocks_livepatch"`
}

func (c CheckResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkJSON{Name: c.Name, Passed: c.OK, Detail: c.Detail, BlocksLivepatch: c.Blocking && !c.OK})
}

func (c *CheckResult) UnmarshalJSON(b []byte) error {
	var j checkJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = CheckResult{Name: j.Name, OK: j.Passed, Detail: j.Detail, Blocking: j.BlocksLivepatch}
	return nil
}

// Report is the outcome of Check.
type Report struct {
	Kernel            string        `json:"kernel"`
	Checks            []CheckResult `json:"checks"`
	LivepatchPossible bool          `json:"livepatch_possible"`
	// Reason is the first blocking failure, empty when patching is possible.
	Reason string `json:"reason,omitempty"`
}

// Check inspects the system and tells whether live patching is possible
// and why not. It only reads; anything unreadable is reported as unknown.
func (s System) Check() Report {
	var r Report
	rel, err := s.Release()
	if err != nil {
		r.add(CheckResult{Name: "kernel", Blocking: true, Detail: "unknown: cannot read kernel release: " + err.Error()})
	} else {
		r.Kernel = rel
		r.add(CheckResult{Name: "kernel", OK: true, Detail: rel})
	}
	cfg, cfgErr := readKernelConfig(s.Root, rel)
	r.add(s.checkLivepatch(cfg, cfgErr))
	r.add(checkReliableStack(cfg, cfgErr))
	r.add(s.checkFtrace())
	r.add(s.checkModulesDisabled())
	r.add(s.checkLockdown())
	r.add(s.checkSigEnforce())
	r.add(s.checkTaint())
	r.add(s.checkPatches())

	r.LivepatchPossible = true
	for _, c := range r.Checks {
		if c.Blocking && !c.OK {
			r.LivepatchPossible = false
			r.Reason = c.Name + ": " + c.Detail
			break
		}
	}
	return r
}

func (r *Report) add(c CheckResult) { r.Checks = append(r.Checks, c) }

func (s System) checkLivepatch(cfg *KernelConfig, cfgErr error) CheckResult {
	c := CheckResult{Name: "livepatch", Blocking: true}
	_, statErr := os.Stat(s.path("sys", "kernel", "livepatch"))
	switch {
	case statErr == nil:
		c.OK = true
		c.Detail = "/sys/kernel/livepatch present"
		if cfg != nil {
			c.Detail += ", CONFIG_LIVEPATCH=" + cfg.Values["CONFIG_LIVEPATCH"]
		}
	case cfg != nil && cfg.Enabled("CONFIG_LIVEPATCH"):
		c.Detail = "CONFIG_LIVEPATCH=y in " + cfg.Source + " but /sys/kernel/livepatch is missing (is sysfs mounted?)"
	case cfg != nil:
		c.Detail = "kernel built without CONFIG_LIVEPATCH (" + cfg.Source + "), no /sys/kernel/livepatch"
	case errors.Is(statErr, os.ErrNotExist):
		c.Detail = "no /sys/kernel/livepatch: kernel built without CONFIG_LIVEPATCH (" + cfgErr.Error() + ")"
	default:
		c.Detail = "unknown: " + statErr.Error()
	}
	return c
}

func checkReliableStack(cfg *KernelConfig, cfgErr error) CheckResult {
	c := CheckResult{Name: "reliable_stacktrace"}
	switch {
	case cfg == nil:
		c.Detail = "unknown: " + cfgErr.Error()
	case cfg.Enabled("CONFIG_HAVE_RELIABLE_STACKTRACE"):
		c.OK = true
		c.Detail = "CONFIG_HAVE_RELIABLE_STACKTRACE=y"
	default:
		c.Detail = "CONFIG_HAVE_RELIABLE_STACKTRACE not set: tasks switch only when they leave the kernel, transitions may stall"
	}
	return c
}

func (s System) checkFtrace() CheckResult {
	c := CheckResult{Name: "ftrace_enabled", Blocking: true}
	v, err := s.readInt("proc", "sys", "kernel", "ftrace_enabled")
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.Detail = "no /proc/sys/kernel/ftrace_enabled: kernel built without CONFIG_DYNAMIC_FTRACE"
	case err != nil:
		c.Detail = "unknown: " + err.Error()
	case v == 1:
		c.OK = true
		c.Detail = "1"
	default:
		c.Detail = "0: patched functions cannot be redirected (sysctl kernel.ftrace_enabled=1)"
	}
	return c
}

func (s System) checkModulesDisabled() CheckResult {
	c := CheckResult{Name: "module_loading", Blocking: true}
	v, err := s.readInt("proc", "sys", "kernel", "modules_disabled")
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.Detail = "no /proc/sys/kernel/modules_disabled: kernel built without module support"
	case err != nil:
		c.Detail = "unknown: " + err.Error()
	case v == 0:
		c.OK = true
		c.Detail = "allowed"
	default:
		c.Detail = "disabled (kernel.modules_disabled=1) until reboot"
	}
	return c
}

func (s System) checkLockdown() CheckResult {
	c := CheckResult{Name: "lockdown"}
	v, err := s.readTrim("sys", "kernel", "security", "lockdown")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.OK = true
			c.Detail = "no lockdown interface (securityfs not mounted or lockdown LSM absent)"
		} else {
			c.Detail = "unknown: " + err.Error()
		}
		return c
	}
	mode := v
	if i := strings.Index(v, "["); i >= 0 {
		if j := strings.Index(v[i:], "]"); j > 0 {
			mode = v[i+1 : i+j]
		}
	}
	if mode == "none" {
		c.OK = true
		c.Detail = "none"
	} else {
		c.Detail = mode + ": only modules signed with a trusted key can be loaded"
	}
	return c
}

func (s System) checkSigEnforce() CheckResult {
	c := CheckResult{Name: "module_sig_enforce"}
	v, err := s.readTrim("sys", "module", "module", "parameters", "sig_enforce")
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.OK = true
		c.Detail = "not enforced (kernel without module signature checking)"
	case err != nil:
		c.Detail = "unknown: " + err.Error()
	case v == "Y":
		c.Detail = "enforced: only modules signed with a trusted key can be loaded"
	default:
		c.OK = true
		c.Detail = "not enforced (an unsigned patch taints the kernel with E)"
	}
	return c
}

func (s System) checkTaint() CheckResult {
	c := CheckResult{Name: "taint"}
	n, err := s.Kernel().Tainted()
	if err != nil {
		c.Detail = "unknown: " + err.Error()
		return c
	}
	if n == 0 {
		c.OK = true
		c.Detail = "not tainted"
		return c
	}
	var parts []string
	for _, f := range DecodeTaint(n) {
		parts = append(parts, fmt.Sprintf("%c (%s)", f.Letter, f.Reason))
	}
	c.Detail = fmt.Sprintf("%d: %s", n, strings.Join(parts, ", "))
	return c
}

func (s System) checkPatches() CheckResult {
	c := CheckResult{Name: "patches"}
	ps, err := s.Patches()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.OK = true
			c.Detail = "none (no livepatch interface)"
		} else {
			c.Detail = "unknown: " + err.Error()
		}
		return c
	}
	if len(ps) == 0 {
		c.OK = true
		c.Detail = "none loaded"
		return c
	}
	c.OK = true
	var parts []string
	for _, p := range ps {
		state := "disabled"
		if p.Enabled {
			state = "enabled"
		}
		if p.Transition {
			state += ", in transition"
			c.OK = false
		}
		parts = append(parts, p.Name+" ("+state+")")
	}
	c.Detail = strings.Join(parts, "; ")
	return c
}
