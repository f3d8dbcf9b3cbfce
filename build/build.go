package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/klpmod"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ktree"
	"github.com/kelp-project/kelp/objdiff"
	"github.com/kelp-project/kelp/refusal"
)

// Options say what to build for which kernel.
type Options struct {
	Patches []string      // patch files, applied together
	Tree    ktree.Options // target kernel, source tree, config
	// Symbols is a kallsyms dump or a vmlinux with a symbol table of the
	// target; empty: /proc/kallsyms when the target is the running kernel.
	Symbols string
	// ModulesDir holds the target's modules (default
	// /lib/modules/<release>), read when the patch changes a module.
	ModulesDir string
	Name       string // module name (default: from the first patch's file name)
	OutDir     string // where NAME.ko and NAME.json go (default ".")
	NoReplace  bool   // build a patch that stacks instead of replacing
	// Description and CVEs say what the patch fixes; Description replaces
	// the one the patches' headers give, CVEs add to theirs (canonical
	// ids, see ValidCVE).
	Description string
	CVEs        []string
	SignKey     string
	SignCert    string
	KeepWork    bool // keep the work directory (its path is in the result)
	// Progress receives one event per stage.
	Progress func(Event)
}

// Event reports a stage starting (Done false) or finished.
type Event struct {
	Stage   string
	Message string
	Done    bool
	Elapsed time.Duration
}

// Result is what a build produced; it is also NAME.json.
type Result struct {
	Name        string   `json:"name"`
	Kernel      string   `json:"kernel"`
	Module      string   `json:"module"`
	Report      string   `json:"report"`
	Patches     []string `json:"patches"`
	PatchSHA256 string   `json:"patch_sha256"`
	Replace     bool     `json:"atomic_replace"`
	// Description and CVEs are what the module says it fixes (modinfo
	// kelp.description and kelp.cve).
	Description string            `json:"description,omitempty"`
	CVEs        []string          `json:"cves"`
	Functions   []string          `json:"functions"`
	Units       []*objdiff.Report `json:"units"`
	// SymbolsBuildID is the build id of the kernel the --symbols dump
	// was taken on, when the dump records it.
	SymbolsBuildID string   `json:"symbols_build_id,omitempty"`
	Ignored        []string `json:"ignored,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
	Timings        []Timing `json:"timings"`
	// PrecompiledHeads are the objects whose patched copy was compiled
	// after a precompiled head of its source.
	PrecompiledHeads []string       `json:"precompiled_heads,omitempty"`
	WorkDir          string         `json:"work_dir,omitempty"`
	Assembly         *klpmod.Module `json:"assembly,omitempty"`
}

// Timing is how long one stage took.
type Timing struct {
	Stage   string        `json:"stage"`
	Seconds float64       `json:"elapsed_seconds"`
	Elapsed time.Duration `json:"-"`
}

// ErrNoChange is returned when the patch changes no function (e.g. only
// comments or line numbers).
var ErrNoChange = errors.New("no functional change: the patch changes no function's code")

// Build runs the pipeline: tree, objects, compile, diff, assemble.
func Build(ctx context.Context, opts Options) (res *Result, err error) {
	b := &builder{opts: opts, res: &Result{}}
	if len(opts.Patches) == 0 {
		return nil, fmt.Errorf("no patch given")
	}
	work, err := os.MkdirTemp("", "kelp-build-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if opts.KeepWork {
			b.res.WorkDir = work
			if res != nil {
				res.WorkDir = work
			}
			return
		}
		os.RemoveAll(work)
	}()
	b.work = work
	if err := b.run(ctx); err != nil {
		return b.res, err
	}
	return b.res, nil
}

type builder struct {
	opts  Options
	res   *Result
	work  string
	patch *ktree.Patch
	tree  *ktree.Tree
	kern  *ksym.Kernel
	// dump is the header of the --symbols file, when it has one.
	dump *ksym.DumpHeader
	// kernRead is closed once kern, read beside the compile from
	// symbolsSrc, is set or kernErr says why it is not.
	symbolsSrc string
	kernRead   chan struct{}
	kernErr    error
	units      []ktree.Unit
	diffs      []klpmod.Unit
	objs       []ktree.Object
	// importNS are the namespaces of the vmlinux exports the patch uses.
	importNS []string
	// imageID is the target's kernel image build id, read beside the
	// tree (startImageID), or nil.
	imageID *imageIDRead
	// linkReady gives the module link's inputs made ready beside the
	// tree and the compiles (klpmod.Prefetch), once; nil when they are
	// not.
	linkReady chan *klpmod.Prefetched
}

// stage runs f as a named stage, timing it and reporting it.
func (b *builder) stage(name, msg string, f func() (string, error)) error {
	if b.opts.Progress != nil {
		b.opts.Progress(Event{Stage: name, Message: msg})
	}
	start := time.Now()
	done, err := f()
	d := time.Since(start)
	b.res.Timings = append(b.res.Timings, Timing{Stage: name, Seconds: d.Seconds(), Elapsed: d})
	if err != nil {
		return err
	}
	if b.opts.Progress != nil {
		b.opts.Progress(Event{Stage: name, Message: done, Done: true, Elapsed: d})
	}
	return nil
}

func (b *builder) step(stage string) func(string) {
	return func(msg string) {
		if b.opts.Progress != nil {
			b.opts.Progress(Event{Stage: stage, Message: msg})
		}
	}
}

func (b *builder) run(ctx context.Context) error {
	// Everything that can be refused without the source tree is refused
	// before it is extracted or prepared.
	if err := b.readPatches(); err != nil {
		return err
	}
	topts, err := b.opts.Tree.Resolve()
	if err != nil {
		return err
	}
	b.opts.Tree = topts
	if err := b.checkSymbolsFile(); err != nil {
		return err
	}
	// A name the target's modules lists hold is refused or changed
	// before the tree when those lists are at hand.
	early := b.modulesDir()
	taken, found, takenErr := kmod.ReadTakenNames(early)
	if takenErr == nil && found {
		if err := b.chooseName(taken); err != nil {
			return err
		}
	}
	// The module stage's link template (the kernel's kbuild directory
	// alone says it) is made ready while the source tree is prepared
	// and the objects compile.
	pctx, cancel := context.WithCancel(ctx)
	var prefetch sync.WaitGroup
	defer func() {
		cancel()
		prefetch.Wait()
	}()
	err = b.stage("tree", "locating the kernel source tree", func() (string, error) {
		topts := b.opts.Tree
		topts.Step = b.step("tree")
		topts.HeadersReady = func(headers, sysroot string, exec *buildroot.Root) {
			b.linkReady = make(chan *klpmod.Prefetched, 1)
			prefetch.Go(func() { b.linkReady <- klpmod.Prefetch(pctx, klpmod.Options{Headers: headers, Exec: exec}) })
			// The image's build id, which the symbols are checked
			// against after the tree, is read while it is prepared.
			b.startImageID(pctx, &prefetch, topts.Release, sysroot)
		}
		t, err := ktree.Open(ctx, topts)
		if err != nil {
			return "", err
		}
		b.tree = t
		b.res.Kernel = t.Release
		return "source tree " + t.Dir + " for " + t.Release, nil
	})
	if err != nil {
		return err
	}
	if takenErr != nil || b.modulesDir() != early {
		if taken, found, err = kmod.ReadTakenNames(b.modulesDir()); err != nil {
			return fmt.Errorf("module names of %s: %w", b.tree.Release, err)
		}
	}
	if !found {
		b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("no modules.builtin or modules.dep in %s: the module name %s was checked only against the names built-in code registers", b.modulesDir(), b.res.Name))
	}
	prefixes, err := b.tree.ParamPrefixNames(ctx)
	if err != nil {
		return fmt.Errorf("module names of %s: %w", b.tree.Release, err)
	}
	for _, p := range prefixes {
		taken.Add(p, "the name built-in code registers its parameters under (/sys/module/"+p+", MODULE_PARAM_PREFIX)")
	}
	if err := b.chooseName(taken); err != nil {
		return err
	}
	// The symbols' source is checked now (a dump of another kernel or
	// build is refused before anything compiles); its table is read
	// while the objects compile.
	if err := b.stage("symbols", "checking the target's symbols", func() (string, error) { return b.checkSymbols(ctx) }); err != nil {
		return err
	}
	err = b.stage("objects", "finding the objects the patch reaches", func() (string, error) {
		objs, ignored, err := b.tree.Objects(ctx, b.patch)
		if err != nil {
			return "", err
		}
		b.objs, b.res.Ignored = objs, ignored
		names := make([]string, len(objs))
		for i, o := range objs {
			names[i] = o.Name
		}
		return fmt.Sprintf("%d object(s): %s", len(objs), strings.Join(names, " ")), nil
	})
	if err != nil {
		return err
	}
	err = b.stage("compile", "compiling original and patched objects", func() (string, error) {
		inc := filepath.Join(b.work, "include")
		if err := klpmod.WriteInclude(inc); err != nil {
			return "", err
		}
		// The symbols are read on a core the compiles leave free.
		var symbols sync.Once
		read := func() { symbols.Do(b.readSymbols) }
		b.units, err = b.tree.CompilePatch(ctx, b.patch, b.objs, filepath.Join(b.work, "units"),
			ktree.CompileOptions{LineGuards: true, Include: inc, Step: b.step("compile"), Idle: read})
		if err != nil {
			return "", err
		}
		read()
		cached, heads := 0, 0
		for _, u := range b.units {
			if u.OrigCached {
				cached++
			}
			if u.PatchedHead {
				heads++
				b.res.PrecompiledHeads = append(b.res.PrecompiledHeads, u.Object)
			}
		}
		msg := fmt.Sprintf("%d object(s): %d original(s) from the object cache, %d compiled; %d patched compiled", len(b.units), cached, len(b.units)-cached, len(b.units))
		if heads > 0 {
			msg += fmt.Sprintf(" (%d after a precompiled head of its source)", heads)
		}
		return msg, nil
	})
	if err != nil {
		return err
	}
	if err := b.stage("diff", "comparing the objects", func() (string, error) {
		if err := b.waitSymbols(); err != nil {
			return "", err
		}
		return b.diff(ctx)
	}); err != nil {
		return err
	}
	return b.stage("module", "assembling the livepatch module", func() (string, error) { return b.assemble(ctx) })
}

func (b *builder) readPatches() error {
	h := sha256.New()
	var ps []*ktree.Patch
	var descs []string
	cves := slices.Clone(b.opts.CVEs)
	for _, c := range cves {
		if _, err := ValidCVE(c); err != nil {
			return err
		}
	}
	for _, p := range b.opts.Patches {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write(data)
		pp, err := ktree.ParsePatch(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if _, err := ktree.CheckPaths(pp); err != nil {
			return err
		}
		ps = append(ps, pp)
		b.res.Patches = append(b.res.Patches, filepath.Base(p))
		hd := ParseHeader(data)
		if hd.Description != "" {
			descs = append(descs, hd.Description)
		}
		cves = append(cves, hd.CVEs...)
	}
	b.res.Description = strings.Join(descs, "\n\n")
	if b.opts.Description != "" {
		b.res.Description = strings.TrimSpace(b.opts.Description)
	}
	b.res.CVEs = SortCVEs(cves)
	if b.res.CVEs == nil {
		b.res.CVEs = []string{}
	}
	b.patch = ktree.Merge(ps...)
	b.res.PatchSHA256 = hex.EncodeToString(h.Sum(nil))
	b.res.Name = b.opts.Name
	if b.res.Name == "" {
		b.res.Name = ModuleName(b.opts.Patches[0])
	}
	if !validName(b.res.Name) {
		return fmt.Errorf("module name %q: want 1 to 55 characters of a-z, 0-9 and _", b.res.Name)
	}
	return nil
}

// checkSymbolsFile refuses, before the tree, a --symbols file that is
// missing or a kelp symbols dump of another kernel release.
func (b *builder) checkSymbolsFile() error {
	if b.opts.Symbols == "" {
		return nil
	}
	hdr, ok, err := readDumpHeader(b.opts.Symbols)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("symbols: %w", err)
	}
	if err != nil {
		return fmt.Errorf("symbols %s: %w", b.opts.Symbols, err)
	}
	if ok {
		b.dump = &hdr
	}
	if ok && hdr.Release != b.opts.Tree.Release {
		return fmt.Errorf("symbols %s were dumped on kernel %s, not on the target %s: take them on the target with kelp symbols", b.opts.Symbols, hdr.Release, b.opts.Tree.Release)
	}
	// One release is shipped by several Debian builds: the tree is made
	// from the packages of the build the symbols were taken on.
	if ok && hdr.Version != "" && b.opts.Tree.Version == "" {
		b.opts.Tree.Version = hdr.Version
	}
	return nil
}

// checkSymbols checks the source of the target's symbols against the
// tree's release and, for a kelp symbols dump, the target's build id,
// then notes where readSymbols reads its table from.
func (b *builder) checkSymbols(ctx context.Context) (string, error) {
	release := b.tree.Release
	src := b.opts.Symbols
	if src == "" {
		running, _ := sys.Running.Release()
		if running != release {
			return "", fmt.Errorf("symbols of %s: give --symbols FILE (a kallsyms dump taken on the target with kelp symbols, or its vmlinux with symbols); /proc/kallsyms is the running kernel's (%s)", release, running)
		}
		src = DefaultKallsyms
	}
	from := src
	// The header checkSymbolsFile read before the tree.
	if hdr := b.dump; hdr != nil {
		if hdr.Release != release {
			return "", fmt.Errorf("symbols %s were dumped on kernel %s, not on the target %s: take them on the target with kelp symbols", src, hdr.Release, release)
		}
		b.res.SymbolsBuildID = hdr.BuildID
		if hdr.BuildID != "" {
			from += " (build id " + hdr.BuildID + ")"
			if err := b.checkBuildID(ctx, hdr.BuildID, src); err != nil {
				return "", err
			}
		}
	}
	b.symbolsSrc = src
	return "symbols from " + from + ", read while the objects compile", nil
}

// readSymbols starts reading the symbols' table checkSymbols checked
// (waitSymbols has it). It is called once a core is free of compiles (a
// rebuild's one compile leaves one free from the start; a first build's
// two take both until the patched copy's ends), so that the table is not
// read beside the work the compiles wait for.
func (b *builder) readSymbols() {
	src := b.symbolsSrc
	b.kernRead = make(chan struct{})
	go func() {
		defer close(b.kernRead)
		k, hdr, err := loadSymbols(src, filepath.Join(b.tree.Headers, "Module.symvers"))
		switch {
		case err != nil:
			b.kernErr = err
		case (hdr == nil) != (b.dump == nil) || hdr != nil && *hdr != *b.dump:
			b.kernErr = fmt.Errorf("symbols %s changed while kelp read them", src)
		default:
			b.kern = k
		}
	}()
}

// waitSymbols waits for the table readSymbols started to read and
// reports its size.
func (b *builder) waitSymbols() error {
	<-b.kernRead
	if b.kernErr != nil {
		return b.kernErr
	}
	b.step("diff")(fmt.Sprintf("%d vmlinux symbols, %d exports", len(b.kern.Vmlinux.Syms), len(b.kern.Exports)))
	return nil
}

// checkBuildID refuses a dump of another build of the target release:
// its build id must be the target kernel's, when kelp can read that (the
// running kernel's notes, or the kernel image the target's system holds).
func (b *builder) checkBuildID(ctx context.Context, dumped, src string) error {
	release := b.tree.Release
	var have, where string
	image, fromImage := targetImage(release, b.tree.SysRoot)
	if !fromImage {
		if notes, err := sys.Running.Notes(); err == nil {
			have = ksym.BuildIDFromNotes(notes)
		}
		where = "the running kernel"
	} else {
		if image == "" {
			return nil // a build machine without the image: the release and Debian version were checked
		}
		var err error
		if have, err = b.imageBuildID(ctx, image); err != nil {
			return fmt.Errorf("build id of %s: %w", image, err)
		}
		where = image
	}
	if have != "" && have != dumped {
		return fmt.Errorf("symbols %s were dumped on a build of %s with build id %s, but %s has build id %s: another build of the same release; take the symbols on the target with kelp symbols", src, release, dumped, where, have)
	}
	return nil
}

// imageIDRead is the build id of a kernel image (cachedImageBuildID),
// read by read while done is open.
type imageIDRead struct {
	image string
	done  chan struct{}
	id    string
	err   error
}

// imageIDStarted, when set, is told the image whose build id a build
// starts reading, as the reading starts (tests).
var imageIDStarted func(image string)

// targetImage says where checkBuildID reads the target's build id: the
// running kernel's notes (fromImage false), or the kernel image of the
// target's system (image "" when the system has none).
func targetImage(release, sysroot string) (image string, fromImage bool) {
	if running, _ := sys.Running.Release(); running == release && sysroot == "" {
		return "", false
	}
	image = filepath.Join(sysroot, "/boot", "vmlinuz-"+release)
	if _, err := os.Stat(image); err != nil {
		return "", true
	}
	return image, true
}

// startImageID starts, in group, reading the build id of the kernel image
// checkBuildID checks a dump's build id against (the first time, a second
// or more to decompress it), so that it runs while the tree is extracted
// and prepared; it does nothing when there is no such image to read.
func (b *builder) startImageID(ctx context.Context, group *sync.WaitGroup, release, sysroot string) {
	if b.dump == nil || b.dump.BuildID == "" || b.dump.Release != release {
		return
	}
	image, fromImage := targetImage(release, sysroot)
	if !fromImage || image == "" {
		return
	}
	f := &imageIDRead{image: image, done: make(chan struct{})}
	b.imageID = f
	if imageIDStarted != nil {
		imageIDStarted(image)
	}
	group.Go(func() { f.read(ctx) })
}

// imageBuildID is the build id of image: the one startImageID started
// reading, once read, or read now.
func (b *builder) imageBuildID(ctx context.Context, image string) (string, error) {
	f := b.imageID
	if f == nil || f.image != image {
		f = &imageIDRead{image: image, done: make(chan struct{})}
		f.read(ctx)
	}
	select {
	case <-f.done:
		return f.id, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// read reads the build id and closes done.
func (f *imageIDRead) read(ctx context.Context) {
	defer close(f.done)
	cache, err := os.UserCacheDir()
	if err != nil {
		f.err = err
		return
	}
	f.id, f.err = cachedImageBuildID(ctx, f.image, filepath.Join(cache, "kelp", "buildids"))
}

func (b *builder) modulesDir() string {
	if b.opts.ModulesDir != "" {
		return b.opts.ModulesDir
	}
	if b.tree == nil {
		return filepath.Join(b.opts.Tree.Root, "/lib/modules", b.opts.Tree.Release)
	}
	return filepath.Join(b.tree.SysRoot, "/lib/modules", b.tree.Release)
}

// chooseName keeps the module name clear of the names the target kernel
// uses: a name derived from a patch file (syscall.patch) becomes
// kelp_<name>; a name given with --name is refused.
func (b *builder) chooseName(taken *kmod.TakenNames) error {
	where, ok := taken.Where(b.res.Name)
	if !ok {
		return nil
	}
	if b.opts.Name != "" {
		return refusal.New(b.res.Name, fmt.Sprintf("module name %s is taken on %s: %s; the kernel would refuse the patch (\"module is already loaded\")", b.res.Name, b.opts.Tree.Release, where), "choose another name with --name")
	}
	renamed := "kelp_" + b.res.Name
	if len(renamed) > 55 {
		renamed = renamed[:55]
	}
	if w2, ok := taken.Where(renamed); ok {
		return refusal.New(b.res.Name, fmt.Sprintf("module names %s (%s) and %s (%s) are taken", b.res.Name, where, renamed, w2), "choose a name with --name")
	}
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("module named %s, not %s: %s on %s is %s", renamed, b.res.Name, b.res.Name, b.opts.Tree.Release, where))
	b.res.Name = renamed
	return nil
}

// diff runs objdiff on every unit and gathers refusals from all of them.
func (b *builder) diff(ctx context.Context) (string, error) {
	lay, err := b.layouts(ctx, b.units[0].Object)
	if err != nil {
		return "", err
	}
	type pair struct{ orig, patched *elfobj.File }
	pairs := make([]pair, len(b.units))
	// Globals the generated init file defines (the klp_patch itself) and
	// new globals other units of the patch define stay inside the module.
	provided := map[string]bool{}
	for _, s := range klpmod.ProvidedSymbols {
		provided[s] = true
	}
	var refusals []refusal.Reason
	depends := map[[2]string]bool{} // module → exporter it depends on
	for i, u := range b.units {
		if pairs[i].orig, err = elfobj.ReadFile(u.Orig); err != nil {
			return "", err
		}
		if pairs[i].patched, err = elfobj.ReadFile(u.Patched); err != nil {
			return "", err
		}
		for _, name := range objdiff.NewGlobals(pairs[i].orig, pairs[i].patched) {
			provided[name] = true
		}
		if u.Owner != ksym.Vmlinux && b.kern.Modules[u.Owner] == nil {
			t, err := moduleTable(b.modulesDir(), u.Owner)
			if err != nil {
				return "", err
			}
			b.kern.Modules[u.Owner] = t
		}
		// Exports of other modules the patched code calls are reached
		// through their modules' symbol tables, as the patched module
		// loads: only a module that depends on the exporter finds it
		// loaded then.
		for _, s := range pairs[i].patched.Symbols {
			e, ok := b.kern.Exports[s.Name]
			if !ok || !s.IsUndefined() || e.Object == ksym.Vmlinux || e.Object == u.Owner {
				continue
			}
			if u.Owner != ksym.Vmlinux {
				// One answer per pair of modules: each walks the
				// modules directory.
				pair := [2]string{u.Owner, e.Object}
				dep, known := depends[pair]
				if !known {
					if dep, err = dependsOn(b.modulesDir(), u.Owner, e.Object); err != nil {
						return "", err
					}
					depends[pair] = dep
				}
				if !dep {
					refusals = append(refusals, refusal.Reason{Unit: u.Object, Symbol: s.Name,
						Reason: fmt.Sprintf("exported by module %s, which %s does not depend on: %s may not be loaded when %s loads, and the kernel would then refuse %s", e.Object, u.Owner, e.Object, u.Owner, u.Owner),
						Hint:   "call it only from a module that depends on " + e.Object})
				}
			}
			if b.kern.Modules[e.Object] != nil {
				continue
			}
			t, err := moduleTable(b.modulesDir(), e.Object)
			if err != nil {
				return "", err
			}
			b.kern.Modules[e.Object] = t
		}
	}
	for i, u := range b.units {
		res, err := objdiff.Diff(objdiff.Input{
			Unit:        u.Object,
			Object:      u.Owner,
			Orig:        pairs[i].orig,
			Patched:     pairs[i].patched,
			Layouts:     lay,
			Resolver:    &ksym.Resolver{Kernel: b.kern, Object: u.Owner, Unit: pairs[i].orig},
			Provided:    provided,
			OrigCRCs:    u.OrigCRCs,
			PatchedCRCs: u.PatchedCRCs,
		})
		var re *refusal.Error
		switch {
		case errors.As(err, &re):
			refusals = append(refusals, re.Reasons...)
		case err != nil:
			return "", err
		}
		if res == nil {
			continue
		}
		b.res.Units = append(b.res.Units, res.Report)
		for _, e := range res.Report.Exports {
			if ns := b.kern.Exports[e.Name].Namespace; ns != "" {
				b.importNS = append(b.importNS, ns)
			}
		}
		b.res.Warnings = append(b.res.Warnings, res.Report.Warnings...)
		for _, f := range res.Report.Changed {
			b.res.Functions = append(b.res.Functions, fmt.Sprintf("%s:%s,%d", u.Owner, f.Name, f.Sympos))
		}
		if err == nil && res.Object != nil {
			b.diffs = append(b.diffs, klpmod.Unit{Object: u.Owner, Diff: res})
		}
	}
	if len(refusals) > 0 {
		return "", &refusal.Error{Reasons: refusals}
	}
	if len(b.diffs) == 0 {
		return "", ErrNoChange
	}
	sort.Strings(b.res.Functions)
	return fmt.Sprintf("%d function(s) changed: %s", len(b.res.Functions), strings.Join(b.res.Functions, " ")), nil
}

// layouts reads the special-section entry sizes of the target tree from
// objdiff's probe compiled there with the flags of the object like
// (cached in the tree: the sizes depend on the config, not the object).
func (b *builder) layouts(ctx context.Context, like string) (objdiff.Layouts, error) {
	dir := filepath.Join(b.tree.Dir, ".kelp-probe", ktree.Digest("layout-v2", objdiff.LayoutProbe))
	_, err := ktree.Cached(dir, func(dir string) error {
		p, err := b.tree.CompileProbe(ctx, "kelp_layout_probe", []byte(objdiff.LayoutProbe), like, dir)
		if err != nil {
			return err
		}
		return os.Rename(p, filepath.Join(dir, "probe.o"))
	})
	if err != nil {
		return nil, fmt.Errorf("special section layouts: %w", err)
	}
	f, err := elfobj.ReadFile(filepath.Join(dir, "probe.o"))
	if err != nil {
		return nil, err
	}
	return objdiff.LayoutsFromProbe(f)
}

func (b *builder) assemble(ctx context.Context) (string, error) {
	b.res.Replace = !b.opts.NoReplace
	replace := "N"
	if b.res.Replace {
		replace = "Y"
	}
	var ready *klpmod.Prefetched
	if b.linkReady != nil {
		ready = <-b.linkReady
	}
	mod, err := klpmod.Build(ctx, b.diffs, klpmod.Options{
		Prefetched: ready,
		Name:       b.res.Name,
		Kernel:     b.tree.Release,
		Headers:    b.tree.Headers,
		Exec:       b.tree.Exec,
		Replace:    b.res.Replace,
		Modinfo: map[string]string{
			"kelp.kernel":       b.tree.Release,
			"kelp.patch":        strings.Join(b.res.Patches, ","),
			"kelp.patch_sha256": b.res.PatchSHA256,
			"kelp.functions":    strings.Join(b.res.Functions, " "),
			"kelp.replace":      replace,
		},
		Metadata: b.metadata(),
		ImportNS: b.importNS,
		WorkDir:  filepath.Join(b.work, "module"),
		SignKey:  b.opts.SignKey,
		SignCert: b.opts.SignCert,
		Jobs:     b.tree.Jobs,
	})
	if err != nil {
		return "", err
	}
	b.res.Assembly = mod
	out := b.opts.OutDir
	if out == "" {
		out = "."
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	ko := filepath.Join(out, b.res.Name+".ko")
	js := filepath.Join(out, b.res.Name+".json")
	b.res.Module, b.res.Report = ko, js
	if err := writeAtomic(ko, mod.Path); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		os.Remove(ko)
		return "", err
	}
	if err := os.WriteFile(js+".tmp", append(data, '\n'), 0o644); err != nil {
		os.Remove(ko)
		return "", err
	}
	if err := os.Rename(js+".tmp", js); err != nil {
		os.Remove(ko)
		return "", err
	}
	return fmt.Sprintf("%s (%d bytes)", ko, mod.Size), nil
}

// metadata is what the module says it fixes: the number of CVE ids (so a
// module naming none says so), kelp.description, then one kelp.cve per
// CVE, in order.
func (b *builder) metadata() [][2]string {
	md := [][2]string{{kmod.CVECountKey, strconv.Itoa(len(b.res.CVEs))}}
	if b.res.Description != "" {
		md = append(md, [2]string{"kelp.description", b.res.Description})
	}
	for _, c := range b.res.CVEs {
		md = append(md, [2]string{"kelp.cve", c})
	}
	return md
}

// writeAtomic copies src to dst through a temporary file, so a failed
// build leaves no partial output.
func writeAtomic(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

var nameRE = regexp.MustCompile(`^[a-z0-9_]{1,55}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// ModuleName derives a kernel-safe module name from a patch file name:
// lower case, [a-z0-9_], at most 55 characters.
func ModuleName(patchFile string) string {
	base := filepath.Base(patchFile)
	for _, ext := range []string{".patch", ".diff"} {
		base = strings.TrimSuffix(base, ext)
	}
	var sb strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	name := strings.Trim(sb.String(), "_")
	if name == "" {
		name = "patch"
	}
	if name[0] >= '0' && name[0] <= '9' {
		name = "p_" + name
	}
	if len(name) > 55 {
		name = name[:55]
	}
	return name
}
