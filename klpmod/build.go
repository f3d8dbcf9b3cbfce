package klpmod

import (
	"github.com/kelp-project/kelp/buildroot"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/modsign"
	"github.com/kelp-project/kelp/objdiff"
)

// Unit is one translation unit's diff: Object is "vmlinux" or the name of
// the module the unit is linked into; Diff is what objdiff.Diff returned.
type Unit struct {
	Object string
	Diff   *objdiff.Result
}

// Options says what module to build and for which kernel.
type Options struct {
	Name    string            // module name (kernel-safe: [a-z0-9_], ≤ 55 chars)
	Kernel  string            // target kernel release, e.g. 6.1.0-56-amd64
	Headers string            // kbuild directory of the target (e.g. /usr/src/linux-headers-<rel>)
	Replace bool              // klp_patch.replace
	Modinfo map[string]string // extra .modinfo entries, written in key order
	// Metadata are entries a key may repeat in (kelp.cve), written in
	// order after Modinfo's into .modinfo and into the module's .note.kelp
	// section, which the kernel shows in /sys/module/<name>/notes once
	// the module is loaded.
	Metadata [][2]string
	// ImportNS are the symbol namespaces of the exports the module uses
	// (Module.symvers' namespace column): one import_ns entry each.
	ImportNS []string
	WorkDir  string // where to work; the caller removes it
	// SignKey and SignCert, when set, are the PEM (or DER) private key and
	// certificate the module is signed with (sha256).
	SignKey, SignCert string
	// Jobs is make's -j (0: one job per unit and the init file).
	Jobs int
	// Make is the make program (default "make").
	Make string
	// Exec is the build root the link runs in (nil: the host).
	Exec *buildroot.Root
	// Kbuild links through kbuild's make even when its recorded link
	// commands could be replayed.
	Kbuild bool
	// Prefetched is what Prefetch made ready for this module's headers
	// (nil: Build reads it).
	Prefetched *Prefetched
	// CacheDir keeps kbuild's recorded link commands per kernel, with the
	// layout probe's record and the template's init and .mod objects, and
	// the init and .mod objects compiled for a module when they cannot be
	// written from the template (default $XDG_CACHE_HOME/kelp/modlink).
	CacheDir string
}

// Module is the assembled livepatch module and what went into it.
type Module struct {
	Path    string   `json:"path"` // NAME.ko inside WorkDir
	Name    string   `json:"name"`
	Kernel  string   `json:"kernel"`
	Replace bool     `json:"atomic_replace"`
	Objects []Object `json:"objects"`
	// KlpRelocs are the livepatch relocations of the final module
	// (sections and offsets as the module has them).
	KlpRelocs []KlpReloc `json:"klp_relocs,omitempty"`
	// KlpSymbols are the .klp.sym symbols of the final module.
	KlpSymbols []string `json:"klp_symbols,omitempty"`
	// Exports are the vmlinux exports the module calls (its __versions).
	Exports     []string `json:"exports,omitempty"`
	States      []State  `json:"states,omitempty"`
	ForceUnsafe []string `json:"force_unsafe,omitempty"`
	Signed      bool     `json:"signed"`
	// CachedObjects counts the init and .mod objects of the direct link
	// taken from the cache of compiled objects, CompiledObjects those
	// compiled (neither: both written from the link template).
	CachedObjects   int   `json:"cached_objects"`
	CompiledObjects int   `json:"compiled_objects"`
	Size            int64 `json:"size"`
	// Timings of the steps, for the build report.
	Timings Timings `json:"timings_seconds"`
}

// Object is one klp_object: vmlinux or a module, and what it patches.
type Object struct {
	Name      string     `json:"name"`
	Funcs     []Func     `json:"funcs"`
	Callbacks []Callback `json:"callbacks,omitempty"`
}

// Func is one klp_func.
type Func struct {
	Object  string `json:"object"`
	Unit    string `json:"unit"`
	OldName string `json:"old_name"`
	Sympos  int    `json:"old_sympos"`
	NewFunc string `json:"new_func"` // the symbol in the module
}

// Callback is one callback declared with a marker of include/kelp/patch.h.
type Callback struct {
	Object string `json:"object"`
	Unit   string `json:"unit"`
	Kind   string `json:"kind"` // pre_patch, post_patch, pre_unpatch, post_unpatch
	Func   string `json:"func"`
	Symbol string `json:"symbol"`
}

// State is one klp_state the patch declares.
type State struct {
	ID      uint64 `json:"id"`
	Version uint32 `json:"version"`
}

// KlpReloc is one livepatch relocation.
type KlpReloc = objdiff.KlpReloc

var nameRE = regexp.MustCompile(`^[a-z0-9_]{1,55}$`)

// Build assembles the livepatch module and returns the path of the .ko
// (inside WorkDir) plus a report of what went into it.
func Build(ctx context.Context, units []Unit, opts Options) (*Module, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	m := &Module{Name: opts.Name, Kernel: opts.Kernel, Replace: opts.Replace, Timings: Timings{}}
	t0 := time.Now()
	var preps []*prepared
	holders := map[string]klpSym{}
	exports := map[string]bool{}
	atLink := objtoolAtLink(opts.Headers)
	for i, u := range units {
		if u.Diff == nil || u.Diff.Report == nil {
			return nil, fmt.Errorf("klpmod: unit %d (%s): no diff", i, u.Object)
		}
		if u.Object == "" {
			u.Object = "vmlinux"
		}
		if u.Diff.Object == nil {
			continue // nothing changed in this unit
		}
		if u.Object != "vmlinux" && !nameRE.MatchString(u.Object) {
			return nil, fmt.Errorf("klpmod: unit %s: object %q is not a module name", u.Diff.Report.Unit, u.Object)
		}
		p, err := prepare(len(preps), u, atLink)
		if err != nil {
			return nil, fmt.Errorf("klpmod: %w", err)
		}
		preps = append(preps, p)
		for k, v := range p.holder {
			holders[k] = v
		}
		for _, e := range u.Diff.Report.Exports {
			exports[e.Name] = true
		}
		m.ForceUnsafe = append(m.ForceUnsafe, p.force...)
	}
	objs := groupObjects(preps)
	nfuncs, ncbs := 0, 0
	for _, o := range objs {
		nfuncs += len(o.funcs)
		ob := Object{Name: o.name, Funcs: o.funcs}
		for _, k := range callbackKinds {
			ob.Callbacks = append(ob.Callbacks, o.cbs[k]...)
		}
		ncbs += len(ob.Callbacks)
		m.Objects = append(m.Objects, ob)
	}
	// A patch of callbacks only is a patch (kpatch builds them too): its
	// objects carry an empty funcs array, which klp_enable_patch accepts
	// (it refuses only a NULL one), and the callbacks run as the objects
	// are patched and unpatched.
	if nfuncs == 0 && ncbs == 0 {
		return nil, errors.New("klpmod: the patch replaces no function and has no callback: nothing to live patch")
	}
	states, err := mergeStates(preps)
	if err != nil {
		return nil, err
	}
	m.States = states
	m.Exports = slices.Sorted(maps.Keys(exports))
	m.Timings["prepare"] = time.Since(t0)

	t0 = time.Now()
	dir := filepath.Join(opts.WorkDir, "kbuild")
	modinfo := opts.modinfo()
	if len(m.ForceUnsafe) > 0 && opts.Modinfo["kelp.force_unsafe"] == "" {
		modinfo = append(modinfo, [2]string{"kelp.force_unsafe", strings.Join(m.ForceUnsafe, ",")})
	}
	// Where the link can be replayed (on the host, headers without a
	// vmlinux), the init code is initC and the patch is data kelp writes
	// (kelp-data.o), laid out as the template's probe found: neither is
	// compiled per module. Elsewhere, and when the template has no
	// layout, the init file is generated C that kbuild compiles: a build
	// root's kernels (Debian 13's) are built that way, as no test proves
	// the written data and the replayed link there.
	var tmpl *linkTemplate
	var symvers *symversIndex
	if directLink(opts) {
		tmpl, symvers, _ = opts.Prefetched.template(ctx, opts)
		m.Timings["link_template"] = time.Since(t0)
	}
	var unitObjs []string
	if tmpl != nil && tmpl.Layout != nil {
		data, err := dataObject(tmpl.Layout, objs, states, opts.Replace, modinfo, opts.Metadata)
		if err != nil {
			return nil, fmt.Errorf("klpmod: the patch's data: %w", err)
		}
		unitObjs, err = writeKbuild(dir, opts, preps, initC, data)
		if err != nil {
			return nil, fmt.Errorf("klpmod: %w", err)
		}
	} else {
		tmpl = nil
		unitObjs, err = writeKbuild(dir, opts, preps, initSource(opts.Name, objs, states, opts.Replace, modinfo, opts.Metadata), nil)
		if err != nil {
			return nil, fmt.Errorf("klpmod: %w", err)
		}
	}
	if tmpl == nil || opts.Kbuild {
		if err := runKbuild(ctx, dir, opts, len(preps)+1, tmpl != nil); err != nil {
			return nil, fmt.Errorf("klpmod: %w", err)
		}
		m.Timings["kbuild"] = time.Since(t0)
	} else {
		t0 = time.Now()
		if m.CachedObjects, m.CompiledObjects, err = linkDirect(ctx, dir, opts, unitObjs, tmpl, symvers); err != nil {
			return nil, fmt.Errorf("klpmod: %w", err)
		}
		m.Timings["link"] = time.Since(t0)
	}

	t0 = time.Now()
	f, err := elfobj.ReadFile(filepath.Join(dir, opts.Name+".ko"))
	if err != nil {
		return nil, fmt.Errorf("klpmod: read the linked module: %w", err)
	}
	if m.KlpRelocs, err = postLink(f, holders); err != nil {
		return nil, fmt.Errorf("klpmod: %w", err)
	}
	// A linker that resolved a placeholder itself would leave code
	// pointing nowhere: every livepatch relocation must come through.
	want := 0
	for _, p := range preps {
		for _, rs := range p.relocs {
			want += len(rs)
		}
	}
	if len(m.KlpRelocs) != want {
		return nil, fmt.Errorf("klpmod: the link kept %d of the patch's %d livepatch relocations (the linker resolved the others itself)", len(m.KlpRelocs), want)
	}
	for _, s := range f.Symbols {
		if s.IsLivepatch() {
			m.KlpSymbols = append(m.KlpSymbols, s.Name)
		}
	}
	data, err := f.Encode()
	if err != nil {
		return nil, fmt.Errorf("klpmod: write the module: %w", err)
	}
	m.Timings["post_link"] = time.Since(t0)
	if opts.SignKey != "" {
		t0 = time.Now()
		key, cert, err := modsign.LoadKeyPair(opts.SignKey, opts.SignCert)
		if err != nil {
			return nil, fmt.Errorf("klpmod: signing key: %w", err)
		}
		if data, err = modsign.Sign(data, key, cert, 0); err != nil {
			return nil, fmt.Errorf("klpmod: sign: %w", err)
		}
		m.Signed = true
		m.Timings["sign"] = time.Since(t0)
	}
	m.Path = filepath.Join(opts.WorkDir, opts.Name+".ko")
	if err := os.WriteFile(m.Path, data, 0o644); err != nil {
		return nil, fmt.Errorf("klpmod: %w", err)
	}
	m.Size = int64(len(data))
	if _, err := kmod.Parse(data); err != nil {
		return nil, fmt.Errorf("klpmod: the module does not read back: %w", err)
	}
	return m, nil
}

func (o *Options) check() error {
	switch {
	case !nameRE.MatchString(o.Name):
		return fmt.Errorf("klpmod: module name %q: want 1 to 55 characters of [a-z0-9_]", o.Name)
	case o.Headers == "":
		return errors.New("klpmod: no kbuild directory of the target kernel (Options.Headers)")
	case o.WorkDir == "":
		return errors.New("klpmod: no work directory")
	case (o.SignKey == "") != (o.SignCert == ""):
		return errors.New("klpmod: signing needs both a key and a certificate")
	}
	if _, err := os.Stat(filepath.Join(o.Headers, "Makefile")); err != nil {
		return fmt.Errorf("klpmod: kbuild directory of the target: %w", err)
	}
	for _, kv := range o.Metadata {
		if err := checkModinfo(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for k, v := range o.Modinfo {
		if err := checkModinfo(k, v); err != nil {
			return err
		}
	}
	return nil
}

// checkModinfo refuses a .modinfo entry that would not read back as given
// or that the build sets itself.
func checkModinfo(k, v string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
		return fmt.Errorf("klpmod: modinfo entry %q=%q: keys must be non-empty without '=', values without NUL", k, v)
	}
	switch k {
	case "livepatch", "license", "vermagic", "name", "depends", "retpoline", "intree", "srcversion":
		return fmt.Errorf("klpmod: modinfo key %q is set by the build", k)
	}
	return nil
}

// modinfo returns the extra entries in key order, then the imported
// namespaces, then Metadata.
func (o *Options) modinfo() [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(o.Modinfo)) {
		out = append(out, [2]string{k, o.Modinfo[k]})
	}
	// MODULE_IMPORT_NS: the loader refuses a module that uses a
	// namespaced export without importing its namespace.
	for _, ns := range slices.Compact(slices.Sorted(slices.Values(o.ImportNS))) {
		out = append(out, [2]string{"import_ns", ns})
	}
	return append(out, o.Metadata...)
}

// mergeStates collects the units' klp_state declarations: one per id, and
// the same id declared with two versions is an error.
func mergeStates(preps []*prepared) ([]State, error) {
	by := map[uint64]State{}
	for _, p := range preps {
		for _, s := range p.states {
			if o, ok := by[s.ID]; ok && o.Version != s.Version {
				return nil, fmt.Errorf("klpmod: state %d declared with versions %d and %d", s.ID, o.Version, s.Version)
			}
			by[s.ID] = s
		}
	}
	out := make([]State, 0, len(by))
	for _, s := range by {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Timings are the durations of a build's steps; in JSON, seconds.
type Timings map[string]time.Duration

func (t Timings) MarshalJSON() ([]byte, error) {
	s := make(map[string]float64, len(t))
	for k, d := range t {
		s[k] = d.Seconds()
	}
	return json.Marshal(s)
}
