package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/livepatch"
	"github.com/spf13/cobra"
)

type infoReport struct {
	File   *kmod.Module            `json:"file,omitempty"`
	Loaded *livepatch.LoadedModule `json:"loaded,omitempty"`
}

func newInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info FILE.ko | NAME",
		Short: "Describe a livepatch module file or a loaded patch",
		Long: `info reads a module file (name, vermagic, srcversion, depends, livepatch
flag, parameters, signature: signer, key id and hash) from the ELF alone,
and, when a module of that name is loaded, its state in the kernel (patch
enabled, transition, objects and functions, refcount). An argument that is
not an existing file is taken as the name of a loaded patch.

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := args[0]
			var r infoReport
			if _, err := os.Stat(arg); err == nil || strings.HasSuffix(arg, ".ko") || strings.Contains(arg, "/") {
				m, err := kmod.Open(arg)
				if err != nil {
					return exitWith(exitFailure, "%s", strings.TrimPrefix(err.Error(), "open "))
				}
				r.File = m
				if lm, err := livepatch.Host.Loaded(m.Name); err == nil {
					r.Loaded = lm
				}
			} else {
				lm, err := livepatch.Host.Loaded(arg)
				if err != nil {
					if errors.Is(err, livepatch.ErrNotLoaded) {
						return exitWith(exitFailure, "%s: no such file, and no patch or module of that name is loaded", arg)
					}
					return asExit(err)
				}
				r.Loaded = lm
			}
			out := cmd.OutOrStdout()
			if g.json {
				return writeJSON(out, r)
			}
			if r.File != nil {
				printModuleFile(out, r.File)
			}
			if r.Loaded != nil {
				if r.File != nil {
					fmt.Fprintln(out)
				}
				printLoaded(out, r.Loaded)
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
			kv(k, v)
		}
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
