package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

// infoReport is `kelp info --json`: the module file, the loaded module
// and the installed patch of that name, each null when there is none.
type infoReport struct {
	File      *kmod.Module            `json:"file"`
	Loaded    *livepatch.LoadedModule `json:"loaded"`
	Installed *installedPatch         `json:"installed"`
	// Fixes is what the patch says it fixes: the loaded module's (from
	// the kernel), else the file's, else the installed file's; null when
	// none says.
	Fixes *kmod.Fixes `json:"fixes"`
}

func newInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info FILE.ko | NAME",
		Short: "Describe a livepatch module file or a loaded patch",
		Long: `info reads a module file (name, vermagic, srcversion, depends, livepatch
flag, parameters, signature: signer, key id and hash) from the ELF alone,
and, when a module of that name is loaded, its state in the kernel (patch
enabled, transition, objects and functions, refcount). An argument that is
not an existing file is taken as the name of a loaded or installed patch;
an installed patch (store of the running kernel) is shown as well.

` + exitCodesHelp,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePatches,
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := args[0]
			var r infoReport
			name := arg
			if _, err := os.Stat(arg); err == nil || strings.HasSuffix(arg, ".ko") || strings.Contains(arg, "/") {
				m, err := kmod.Open(arg)
				if err != nil {
					return g.emit(cmd, r, failWith(err, "info: %s", strings.TrimPrefix(err.Error(), "open ")))
				}
				r.File, name = m, m.Name
			}
			lm, err := livepatch.Host.Loaded(name)
			switch {
			case err == nil:
				r.Loaded = lm
			case !errors.Is(err, livepatch.ErrNotLoaded):
				return g.emit(cmd, r, failWith(err, "info: %v", err))
			}
			r.Installed = installedNamed(name)
			r.Fixes = infoFixes(r, name)
			if r.File == nil && r.Loaded == nil && r.Installed == nil {
				rel, _ := livepatch.Host.Release()
				return g.emit(cmd, r, exitWith(exitFailure, "info: %s: no such file, no patch or module of that name is loaded, and none is installed for %s", arg, orUnknown(rel)))
			}
			out := cmd.OutOrStdout()
			if g.json {
				return g.emit(cmd, r, nil)
			}
			if r.File != nil {
				printModuleFile(out, r.File)
			}
			if r.Loaded != nil {
				if r.File != nil {
					fmt.Fprintln(out)
				}
				printLoaded(out, r.Loaded)
				if f, ok := livepatch.Host.Fixes(r.Loaded.Name); ok {
					printFixes(out, f)
				}
			}
			if p := r.Installed; p != nil {
				if r.File != nil || r.Loaded != nil {
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "%-12s %s\n", "installed:", p.File)
				fmt.Fprintf(out, "%-12s %s\n", "since:", p.InstalledAt.Format(time.RFC3339))
				if p.Cumulative {
					fmt.Fprintf(out, "%-12s %s\n", "cumulative:", "yes")
				}
				if r.Loaded == nil && r.File == nil && (p.Description != "" || len(p.CVEs) > 0) {
					printFixes(out, p.Fixes)
				}
			}
			return nil
		},
	}
}

func printModuleFile(out io.Writer, m *kmod.Module) {
	kv := func(k, v string) { fmt.Fprintf(out, "%-12s %s\n", k+":", v) }
	kv("file", m.Path)
	kv("name", m.Name)
	kv("livepatch", yesNo(m.Livepatch))
	kv("vermagic", strings.TrimSpace(m.Vermagic))
	kv("kernel", kmod.Release(m.Vermagic))
	if m.Srcversion != "" {
		kv("srcversion", m.Srcversion)
	}
	deps := strings.Join(m.Depends, ", ")
	if deps == "" {
		deps = "-"
	}
	kv("depends", deps)
	for _, k := range []string{"description", "author", "license", "version"} {
		for _, v := range m.Info[k] {
			kv(k, v)
		}
	}
	for _, p := range m.Info["parm"] {
		kv("parameter", p)
	}
	if len(m.KlpObjects) > 0 {
		kv("klp relocs", strings.Join(m.KlpObjects, ", "))
	}
	switch s := m.Signature; {
	case s == nil:
		kv("signature", "none (loading it taints the kernel with E unless signatures are enforced)")
	case s.Error != "":
		kv("signature", fmt.Sprintf("%s, %d bytes, unreadable: %s", s.Type, s.Size, s.Error))
	default:
		kv("signature", fmt.Sprintf("%s, %d bytes", s.Type, s.Size))
		if s.Signer != "" {
			kv("signer", s.Signer)
		}
		if s.KeyID != "" {
			kv("key id", s.KeyID)
		}
		if s.HashAlgo != "" {
			kv("hash", s.HashAlgo)
		}
	}
	// Build metadata a builder records in .modinfo (keys kelp.*).
	var keys []string
	for k := range m.Info {
		if strings.HasPrefix(k, "kelp") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range m.Info[k] {
			// A description's later lines are indented under its first.
			lines := strings.Split(v, "\n")
			for i := 1; i < len(lines); i++ {
				if lines[i] != "" {
					lines[i] = strings.Repeat(" ", 13) + lines[i]
				}
			}
			kv(k, strings.Join(lines, "\n"))
		}
	}
}

// infoFixes picks what the patch says it fixes (see infoReport.Fixes).
func infoFixes(r infoReport, name string) *kmod.Fixes {
	if r.Loaded != nil {
		if f, ok := livepatch.Host.Fixes(r.Loaded.Name); ok {
			return &f
		}
	}
	has := func(f kmod.Fixes) bool { return f.Description != "" || len(f.CVEs) > 0 }
	if r.File != nil {
		if f := kmod.FixesOf(r.File.Info); has(f) {
			return &f
		}
	}
	if r.Installed != nil && has(r.Installed.Fixes) {
		f := r.Installed.Fixes
		return &f
	}
	return nil
}

// printFixes shows what a loaded patch says it fixes.
func printFixes(out io.Writer, f kmod.Fixes) {
	kv := func(k, v string) { fmt.Fprintf(out, "%-12s %s\n", k+":", v) }
	kv("fixes", orDash(strings.Join(f.CVEs, ", ")))
	if f.Description != "" {
		kv("description", f.Summary())
	}
}

func printLoaded(out io.Writer, lm *livepatch.LoadedModule) {
	kv := func(k, v string) { fmt.Fprintf(out, "%-12s %s\n", k+":", v) }
	kv("loaded", lm.Name)
	if m := lm.Module; m != nil {
		kv("module", fmt.Sprintf("%s, refcount %d, taint %s", m.State, m.Refcount, orDash(m.Taint)))
	} else {
		kv("module", "not in /proc/modules")
	}
	if lm.Srcversion != "" {
		kv("srcversion", lm.Srcversion)
	}
	p := lm.Patch
	if p == nil {
		kv("patch", "not registered (disabled, or replaced by an atomic-replace patch)")
	} else {
		kv("patch", patchState(*p))
		for _, o := range p.Objects {
			st := "patched"
			if !o.Patched {
				st = "not loaded"
			}
			kv("object", o.Name+" ("+st+")")
			for _, f := range o.Funcs {
				kv("  function", fmt.Sprintf("%s,%d", f.Name, f.Sympos))
			}
		}
	}
	names := make([]string, 0, len(lm.Params))
	for n := range lm.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		kv("parameter", n+"="+lm.Params[n])
	}
}

// installedNamed returns the patch of that name installed for the running
// kernel, nil when there is none (or the store cannot say).
func installedNamed(name string) *installedPatch {
	rel, err := livepatch.Host.Release()
	if err != nil {
		return nil
	}
	st := openStore()
	es, _, err := st.List(rel)
	if err != nil {
		return nil
	}
	for _, p := range installedView(st, rel, es) {
		if p.Name == name || p.Name == strings.ReplaceAll(name, "-", "_") {
			return &p
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
