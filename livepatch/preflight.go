package livepatch

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/kmod"
)

// Inspect runs every check on a patch file that needs only the file and
// the running kernel's identity: a readable kernel module, a livepatch,
// built for this kernel, the parameters it is given exist, and a
// signature when the kernel demands one. It returns the module and any
// warnings (e.g. "unsigned"). Nothing is changed.
func (s System) Inspect(path string, params []string) (*kmod.Module, []string, error) {
	refuse := func(check, format string, args ...any) (*kmod.Module, []string, error) {
		return nil, nil, &PreflightError{Target: path, Check: check, Reason: fmt.Sprintf(format, args...)}
	}
	m, err := kmod.Open(path)
	if err != nil {
		var pe *os.PathError
		switch {
		case errors.As(err, &pe):
			return refuse("file", "cannot read: %s", errnoText(pe.Err))
		case errors.Is(err, kmod.ErrNotModule):
			return refuse("file", "%s", strings.TrimPrefix(err.Error(), path+": "))
		default:
			return refuse("file", "%s", strings.TrimPrefix(err.Error(), path+": "))
		}
	}
	if !m.Livepatch {
		return refuse("livepatch", "module %s is not a livepatch module (its .modinfo has no livepatch=Y); load ordinary modules with modprobe", m.Name)
	}
	rel, err := s.Release()
	if err != nil {
		return refuse("vermagic", "cannot read the running kernel's release: %v", err)
	}
	if built := kmod.Release(m.Vermagic); built != rel {
		return refuse("vermagic", "built for kernel %s, but the running kernel is %s (vermagic %q)", built, rel, strings.TrimSpace(m.Vermagic))
	}
	if err := checkParams(m, params); err != nil {
		return refuse("parameters", "%s", err)
	}
	var warnings []string
	need, why := s.signatureRequired()
	switch {
	case m.Signature == nil && need:
		return refuse("signature", "module %s is not signed, and this kernel only loads signed modules (%s)", m.Name, why)
	case m.Signature == nil:
		warnings = append(warnings, "module "+m.Name+" is not signed: loading it taints the kernel (E)")
	case m.Signature.Error != "" && need:
		return refuse("signature", "module %s has an unreadable signature (%s), and this kernel only loads signed modules (%s)", m.Name, m.Signature.Error, why)
	}
	warnings = append(warnings, lateRelocationWarnings(m, rel)...)
	return m, warnings, nil
}

// lateRelocationWarnings: before Linux 6.3, x86 cannot apply a patch's
// relocations for a module a second time, so a target module that is
// unloaded and loaded again while the patch stays loaded fails to load.
func lateRelocationWarnings(m *kmod.Module, release string) []string {
	if !olderThan(release, 6, 3) {
		return nil
	}
	var ws []string
	for _, obj := range m.KlpObjects {
		if obj == "vmlinux" {
			continue
		}
		ws = append(ws, fmt.Sprintf("patch %s relocates code for module %s: on this kernel (before 6.3) %s cannot be loaded again after it is unloaded while %s stays loaded (unload the patch first)", m.Name, obj, obj, m.Name))
	}
	return ws
}

// olderThan reports whether a kernel release ("6.1.0-56-amd64") is older
// than major.minor; an unparsable release is not.
func olderThan(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma < major || ma == major && mi < minor
}

// signatureRequired tells whether the kernel refuses unsigned modules, and
// why (lockdown or module.sig_enforce).
func (s System) signatureRequired() (bool, string) {
	if v, err := s.readTrim("sys", "module", "module", "parameters", "sig_enforce"); err == nil && v == "Y" {
		return true, "module.sig_enforce=1"
	}
	if v, err := s.readTrim("sys", "kernel", "security", "lockdown"); err == nil {
		if i := strings.Index(v, "["); i >= 0 {
			if j := strings.Index(v[i:], "]"); j > 0 {
				if mode := v[i+1 : i+j]; mode != "none" {
					return true, "lockdown=" + mode
				}
			}
		}
	}
	return false, ""
}

// checkParams verifies that every name=value parameter names a parameter
// the module declares (the kernel would only warn and ignore it).
func checkParams(m *kmod.Module, params []string) error {
	known := map[string]string{}
	for _, pt := range m.Info["parmtype"] {
		name, typ, _ := strings.Cut(pt, ":")
		known[name] = typ
	}
	for _, p := range params {
		name, _, ok := strings.Cut(p, "=")
		if !ok {
			// The kernel accepts a bare name for booleans.
			name = p
		}
		if _, ok := known[name]; ok {
			continue
		}
		if len(known) == 0 {
			return fmt.Errorf("module %s takes no parameters, but %q was given", m.Name, p)
		}
		names := make([]string, 0, len(known))
		for n := range known {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("module %s has no parameter %q (it has: %s)", m.Name, name, strings.Join(names, ", "))
	}
	return nil
}

// readiness is what the system-side pre-flight found for a module.
type readiness struct {
	// alreadyEnabled: a module of that name is loaded and its patch is
	// enabled and settled: nothing to do.
	alreadyEnabled bool
}

// preflightSystem checks the running system for loading m: live patching
// possible, dependencies loaded, no module of that name loaded in another
// state, no transition under way.
func (s System) preflightSystem(m *kmod.Module) (readiness, error) {
	refuse := func(check, format string, args ...any) (readiness, error) {
		return readiness{}, &PreflightError{Target: m.Name, Check: check, Reason: fmt.Sprintf(format, args...)}
	}
	r := s.Check()
	if !r.LivepatchPossible {
		return refuse("system", "live patching is not possible here: %s", r.Reason)
	}
	mods, err := s.Modules()
	if err != nil {
		return refuse("modules", "cannot list loaded modules: %v", err)
	}
	loaded := map[string]Module{}
	for _, mod := range mods {
		loaded[mod.Name] = mod
	}
	if cur, ok := loaded[m.Name]; ok {
		p, err := s.Patch(m.Name)
		if err == nil && p.Transition {
			return refuse("transition", "patch %s is in transition (%s); wait for it, or reverse it with kelp unload %s", m.Name, s.transitionText(*p), m.Name)
		}
		srcv, _ := s.readTrim("sys", "module", m.Name, "srcversion")
		if srcv != "" && m.Srcversion != "" && srcv != m.Srcversion {
			return refuse("loaded", "a different build of module %s is already loaded (srcversion %s, this file %s); kelp unload %s first", m.Name, srcv, m.Srcversion, m.Name)
		}
		switch {
		case err == nil && p.Enabled:
			return readiness{alreadyEnabled: true}, nil
		case err == nil:
			return refuse("loaded", "module %s is loaded and its patch is being disabled; wait, then load again", m.Name)
		case cur.Livepatch():
			return refuse("loaded", "module %s is loaded but its patch is disabled or was replaced, and a disabled patch cannot be enabled again; kelp unload %s first", m.Name, m.Name)
		default:
			return refuse("loaded", "a module named %s is already loaded and it is not a livepatch", m.Name)
		}
	}
	if err := s.nameTaken(m.Name); err != nil {
		return refuse("name", "%s", err)
	}
	for _, dep := range m.Depends {
		if _, ok := loaded[dep]; !ok {
			return refuse("depends", "module %s depends on module %s, which is not loaded", m.Name, dep)
		}
	}
	t, err := s.transitioning()
	if err != nil {
		return refuse("transition", "cannot read the livepatch state: %v", err)
	}
	if t != nil {
		return refuse("transition", "patch %s is in transition (%s); the kernel runs one transition at a time: wait for it, or end it with kelp unload %s (reverse) or kelp force %s", t.Name, s.transitionText(*t), t.Name, t.Name)
	}
	return readiness{}, nil
}

// transitionText says where a transition stands: "patching, 118 of 120
// tasks switched".
func (s System) transitionText(p Patch) string {
	sc := s.scanTasks(p.Target())
	if sc.Total == 0 || sc.Undefined == sc.Total {
		return p.Target().Verb()
	}
	return fmt.Sprintf("%s, %d of %d tasks switched", p.Target().Verb(), sc.Switched, sc.Total)
}

// nameTaken tells whether the running kernel already uses name for
// something that is not a loaded module: built-in code (its
// /sys/module/<name> directory; the kernel refuses a second one with a
// bare EINVAL, "module is already loaded"), or a module it ships, which
// could no longer load while the patch holds its name.
func (s System) nameTaken(name string) error {
	advice := "rebuild the patch under another name (kelp build --name NAME)"
	if _, err := os.Stat(s.path("sys", "module", name)); err == nil {
		return fmt.Errorf("module name %s is taken by code built into the kernel (/sys/module/%s exists): the kernel would refuse the module; %s", name, name, advice)
	}
	rel, err := s.Release()
	if err != nil {
		return nil
	}
	taken, _, err := kmod.ReadTakenNames(s.path("lib", "modules", rel))
	if err != nil {
		return nil // no module lists: the kernel's own check stands
	}
	if where, ok := taken.Where(name); ok {
		return fmt.Errorf("module name %s is taken: it is %s; %s", name, where, advice)
	}
	return nil
}
