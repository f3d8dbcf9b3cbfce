package klpmod

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/ktree"
)

// The module is linked without make: kbuild links a template module once
// per kernel headers directory, and the commands it records for it (the
// init file's compile with objtool, the composite link, modpost, the
// .mod.c compile and the final link with the module linker script) are
// replayed for each module with its name and directory, without their
// two compiles: the init object is the template's (initC, the same for
// every module) and NAME.mod.o the template's with the module's name,
// CRCs and dependencies written in (modObject). The output is what
// kbuild itself produces from the same objects.

// linkVersion names the layout of a recorded template.
const linkVersion = "modlink-v3"

// Template module name and the directory kbuild built it in; both are
// replaced in the recorded commands.
const tmplName = "kelptmplmod"

// linkTemplate is kbuild's recorded commands for a template module.
type linkTemplate struct {
	Dir string `json:"dir"` // where kbuild built the template
	// CC is the compiler the commands run and its identity when recorded.
	CC, CCKey string
	Init      string `json:"init"`    // kelp-init.o: gcc + objtool
	Composite string `json:"link"`    // NAME.o from NAME.mod
	Modpost   string `json:"modpost"` // NAME.mod.c and Module.symvers
	ModCmd    string `json:"mod_o"`   // NAME.mod.o
	Final     string `json:"ko"`      // NAME.ko

	// Layout is the livepatch structures' layout the probe recorded (nil:
	// the probe failed, and modules are built as kbuild builds them).
	Layout *structLayout `json:"layout,omitempty"`
	// InitObj is initC's object, the same for every module name (nil:
	// it is not, and each module's is compiled).
	InitObj []byte `json:"init_object,omitempty"`
	// ModC and ModObj are the template's NAME.mod.c and its object, when
	// modObject writes from them what the compiler makes of another
	// module's (else each module's is compiled).
	ModC   string `json:"mod_c,omitempty"`
	ModObj []byte `json:"mod_object,omitempty"`

	key   string // digest of the recorded template
	cache string // where compiled init and .mod objects are kept
}

// steps returns the commands in the order they run.
func (t *linkTemplate) steps() []string {
	return []string{t.Init, t.Composite, t.Modpost, t.ModCmd, t.Final}
}

// directLink tells whether the module can be linked without make: not
// with a kbuild directory that has a vmlinux, from which kbuild adds BTF
// to modules (the recorded commands do not), and not in a build root.
// There kbuild's make links: the headers of Debian 13's kernels hold a
// vmlinux, and no kernel of a build root without one proves the replayed
// link byte for byte against kbuild's (the commands would run through
// opts.Exec, with the root's compiler identity in the template's key).
func directLink(opts Options) bool {
	if opts.Exec != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(opts.Headers, "vmlinux"))
	return os.IsNotExist(err)
}

// templateFor returns the recorded template of opts.Headers, recording it
// (one kbuild run) the first time. Callers at once (Prefetch's and
// Build's) share one reading or recording.
func templateFor(ctx context.Context, opts Options) (*linkTemplate, error) {
	cache, file, err := templateFile(opts)
	if err != nil {
		return nil, err
	}
	v, _ := templatesInFlight.LoadOrStore(file, &templateOnce{})
	o := v.(*templateOnce)
	o.once.Do(func() {
		o.t, o.err = loadTemplate(ctx, cache, file, opts)
		// A later caller reads the file again.
		templatesInFlight.CompareAndDelete(file, o)
	})
	return o.t, o.err
}

// templatesInFlight holds, per template file, the reading or recording
// under way in this process.
var templatesInFlight sync.Map

type templateOnce struct {
	once sync.Once
	t    *linkTemplate
	err  error
}

// loadTemplate reads the template recorded in file, or records it.
func loadTemplate(ctx context.Context, cache, file string, opts Options) (*linkTemplate, error) {
	t, err := readTemplate(ctx, file, opts)
	if err != nil {
		if t, err = recordTemplate(ctx, opts); err != nil {
			return nil, fmt.Errorf("record kbuild's module link: %w", err)
		}
		data, err := json.MarshalIndent(t, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(file, data, 0o644); err != nil {
			return nil, err
		}
	}
	t.key = ktree.Digest(file, t.Init, t.ModCmd, t.CCKey)
	t.cache = filepath.Join(cache, "objects")
	return t, nil
}

// Prefetch makes the link template of opts.Headers ready ahead of Build,
// while the source tree is prepared and the objects compile: it checks
// the recorded one (the identity of its compiler) or records it, and
// indexes the kernel's export list (Module.symvers) that modpost's input
// is cut from. A Build meanwhile waits for it and takes its result; a
// Build given the result (Options.Prefetched) starts from it. It reports
// nothing: Build does. The caller waits for it to return before it ends
// (cancelling ctx ends a recording). It returns nil where the link is
// kbuild's make.
func Prefetch(ctx context.Context, opts Options) *Prefetched {
	if !directLink(opts) {
		return nil
	}
	_, file, err := templateFile(opts)
	if err != nil {
		return nil
	}
	p := &Prefetched{file: file}
	p.t, p.err = templateFor(ctx, opts)
	if p.err == nil {
		// Without the index, the link reads the whole list.
		p.symvers, _ = indexSymvers(opts.Headers)
	}
	return p
}

// Prefetched is what Prefetch made ready: the template of one headers
// directory, and its export list's index.
type Prefetched struct {
	file    string // the template's file (templateFile)
	t       *linkTemplate
	err     error
	symvers *symversIndex
}

// template is the prefetched template when it is opts' (the same
// template file), else templateFor's.
func (p *Prefetched) template(ctx context.Context, opts Options) (*linkTemplate, *symversIndex, error) {
	if p != nil && p.err == nil {
		if _, file, err := templateFile(opts); err == nil && file == p.file {
			return p.t, p.symvers, nil
		}
	}
	t, err := templateFor(ctx, opts)
	return t, nil, err
}

// templateFile is the cache directory of recorded templates and the file
// of opts.Headers' template, keyed by what the recorded commands depend on.
func templateFile(opts Options) (cache, file string, err error) {
	cache = opts.CacheDir
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", "", fmt.Errorf("cache directory: %w", err)
		}
		cache = filepath.Join(base, "kelp", "modlink")
	}
	var keys []string
	for _, f := range []string{"Makefile", ".config", "Module.symvers", "scripts/mod/modpost", "arch/x86/module.lds", "scripts/module.lds",
		"tools/objtool/objtool", "include/generated/autoconf.h", "include/config/kernel.release"} {
		k, err := ktree.FileKey(filepath.Join(opts.Headers, f))
		if err != nil && !os.IsNotExist(err) {
			return "", "", err
		}
		keys = append(keys, k)
	}
	abs, err := filepath.Abs(opts.Headers)
	if err != nil {
		return "", "", err
	}
	where := "host"
	if opts.Exec != nil {
		where = opts.Exec.Dir
	}
	return cache, filepath.Join(cache, ktree.Digest(append([]string{linkVersion, where, abs, os.Getenv("KCFLAGS")}, keys...)...)+".json"), nil
}

// readTemplate reads a recorded template, valid while its compiler (where
// the link runs) is the one it was recorded with.
func readTemplate(ctx context.Context, file string, opts Options) (*linkTemplate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var t linkTemplate
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	key, err := ktree.CompilerID(ctx, opts.Exec, t.CC)
	if err != nil || key != t.CCKey {
		return nil, errors.New("compiler changed")
	}
	return &t, nil
}

// recordTemplate has kbuild link a template module (initC and one
// prebuilt unit) and reads back the commands it recorded, then the
// layout probe, initC's object and the template's NAME.mod.o, each
// checked against the compiler where kelp writes it for a module.
func recordTemplate(ctx context.Context, opts Options) (*linkTemplate, error) {
	tmp, err := os.MkdirTemp("", "kelp-modlink-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "kbuild")
	unit := filepath.Join(tmp, "unit.c")
	// What kelp-data.o defines for initC.
	if err := os.WriteFile(unit, []byte("long __kelp_patch[64], __kelp_callbacks[4];\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := opts.Exec.Command(ctx, tmp, nil, "gcc", "-c", "-o", filepath.Join(dir, "kelp-u0.o_shipped"), unit).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gcc: %v: %s", err, out)
	}
	if err := layout(dir, tmplName, []string{"kelp-u0.o"}, initC); err != nil {
		return nil, err
	}
	o := opts
	o.Name = tmplName
	if err := runKbuild(ctx, dir, o, 1, true); err != nil {
		return nil, err
	}
	t := &linkTemplate{Dir: dir}
	for _, r := range []struct {
		field *string
		file  string
	}{
		{&t.Init, "kelp-init.o"}, {&t.Composite, tmplName + ".o"}, {&t.Modpost, "Module.symvers"},
		{&t.ModCmd, tmplName + ".mod.o"}, {&t.Final, tmplName + ".ko"},
	} {
		data, err := os.ReadFile(filepath.Join(dir, "."+r.file+".cmd"))
		if err != nil {
			return nil, err
		}
		line, _, _ := strings.Cut(string(data), "\n")
		// Linux 6.3 renamed the record "savedcmd_".
		cmd, ok := strings.CutPrefix(line, "cmd_"+filepath.Join(dir, r.file)+" := ")
		if !ok {
			cmd, ok = strings.CutPrefix(line, "savedcmd_"+filepath.Join(dir, r.file)+" := ")
		}
		if !ok {
			return nil, fmt.Errorf("kbuild's record of %s not understood", r.file)
		}
		// The record is make syntax: $$ is one $.
		*r.field = strings.ReplaceAll(strings.TrimSpace(cmd), "$$", "$")
	}
	t.CC, _, _ = strings.Cut(t.Init, " ")
	if t.CCKey, err = ktree.CompilerID(ctx, opts.Exec, t.CC); err != nil {
		return nil, err
	}
	// The checks compile in another directory, for another module name
	// as long as a module name can be.
	check := filepath.Join(tmp, "check")
	if err := os.MkdirAll(check, 0o755); err != nil {
		return nil, err
	}
	// compile runs cmd, which compiles stem.c of the template, on
	// source in check as newStem.c (stem and newStem for another module
	// name once the name is replaced).
	compile := func(cmd, stem, newStem, source string) ([]byte, error) {
		r := strings.NewReplacer(dir, check, tmplName, checkName, stem+".", newStem+".")
		if err := os.WriteFile(filepath.Join(check, newStem+".c"), []byte(source), 0o644); err != nil {
			return nil, err
		}
		if out, err := opts.Exec.Command(ctx, opts.Headers, nil, "sh", "-c", r.Replace(cmd)).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%v: %s", err, lastLines(string(out), 3))
		}
		return os.ReadFile(filepath.Join(check, newStem+".o"))
	}
	init, err := os.ReadFile(filepath.Join(dir, "kelp-init.o"))
	if err != nil {
		return nil, err
	}
	modC, err := os.ReadFile(filepath.Join(dir, tmplName+".mod.c"))
	if err != nil {
		return nil, err
	}
	modObj, err := os.ReadFile(filepath.Join(dir, tmplName+".mod.o"))
	if err != nil {
		return nil, err
	}
	// The three compiles run at once. Without a layout modules are
	// built as kbuild builds them: the probe's failure is no error, nor
	// a check's, after which each module's object is compiled.
	var wg sync.WaitGroup
	wg.Go(func() {
		if probe, err := compile(t.Init, "kelp-init", "kelp-probe", layoutC); err == nil {
			t.Layout, _ = readLayout(probe)
		}
	})
	wg.Go(func() {
		if other, err := compile(t.Init, "kelp-init", "kelp-init", initC); err == nil && bytes.Equal(other, init) {
			t.InitObj = init
		}
	})
	wg.Go(func() {
		if checkMod(modObj, string(modC), func(src string) ([]byte, error) {
			return compile(t.ModCmd, checkName+".mod", checkName+".mod", src)
		}) == nil {
			t.ModC, t.ModObj = string(modC), modObj
		}
	})
	wg.Wait()
	return t, nil
}

// checkName is a module name as long as one can be.
const checkName = "kelp_check_a_module_name_as_long_as_one_can_be_01234567"

// checkMod checks that modObject writes, from the template's object
// tobj of source tsrc, what the compiler (compile) makes of a source that
// differs from the template's in the name, the __versions entries and
// the dependencies, as a module's may.
func checkMod(tobj []byte, tsrc string, compile func(src string) ([]byte, error)) error {
	ts, err := parseModC(tsrc)
	if err != nil {
		return err
	}
	m := &modSource{Skeleton: ts.Skeleton, Depends: "kelp_check_a,kelp_check_b",
		Versions: append(slices.Clone(ts.Versions), modVersion{0xfedcba98, "kelp_check_symbol"}, modVersion{0x1, "kelp_check_other_symbol"})}
	want, err := compile(m.source())
	if err != nil {
		return err
	}
	wf, err := elfobj.Parse(want)
	if err != nil {
		return err
	}
	if want, err = wf.Encode(); err != nil {
		return err
	}
	got, err := modObject(tobj, ts, checkName, m)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("the .mod object written differs from the compiler's")
	}
	return nil
}

// layout writes the files of a module's link in dir: the init file, the
// Kbuild file naming the composite's objects (init first), the .mod list
// and modules.order as kbuild writes them, and a command record for each
// object (modpost reads MODVERSIONS CRCs from them; a prebuilt unit
// exports nothing).
func layout(dir, name string, units []string, initC string) error {
	if err := os.WriteFile(filepath.Join(dir, "kelp-init.c"), []byte(initC), 0o644); err != nil {
		return err
	}
	objs := append([]string{"kelp-init.o"}, units...)
	// The file names contain '-', so none can be the module's own
	// object (module names are [a-z0-9_]).
	kbuild := fmt.Sprintf("obj-m := %s.o\n%s-y := %s\n", name, name, strings.Join(objs, " "))
	if err := os.WriteFile(filepath.Join(dir, "Kbuild"), []byte(kbuild), 0o644); err != nil {
		return err
	}
	for _, u := range units {
		if err := os.WriteFile(filepath.Join(dir, "."+u+".cmd"), []byte("# prebuilt by kelp build\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// linkDirect links the module in dir (laid out by writeKbuild) with the
// template's commands, run in the kbuild directory as kbuild runs them.
// The init object is the template's and NAME.mod.o is written from the
// template's when they can be; else they are compiled, or taken from the
// cache of compiled objects (cached), and compiled counts the compiles.
func linkDirect(ctx context.Context, dir string, opts Options, units []string, t *linkTemplate, symvers *symversIndex) (cached, compiled int, err error) {
	var list strings.Builder
	for _, o := range append([]string{"kelp-init.o"}, units...) {
		list.WriteString(filepath.Join(dir, o) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, opts.Name+".mod"), []byte(list.String()), 0o644); err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.order"), []byte(filepath.Join(dir, opts.Name+".ko")+"\n"), 0o644); err != nil {
		return 0, 0, err
	}
	r := strings.NewReplacer(t.Dir, dir, tmplName, opts.Name)
	// The two compiles (the init file and NAME.mod.c) are kept by
	// content: their objects depend on the template, the module name and
	// the source, not on where the module is built (-ffile-prefix-map).
	compiles := map[string][2]string{
		t.Init:   {"kelp-init.c", "kelp-init.o"},
		t.ModCmd: {opts.Name + ".mod.c", opts.Name + ".mod.o"},
	}
	// modpost's input is made from the link's objects while ld links
	// them (kept, once the init object is there).
	var kept func() (string, error)
	for _, step := range t.steps() {
		cmd := r.Replace(step)
		if step == t.Modpost {
			if cmd, err = modpostInput(dir, cmd, kept); err != nil {
				return 0, 0, err
			}
		}
		io := compiles[step]
		written, err := t.write(dir, opts.Name, step, io[1])
		if err != nil {
			return 0, 0, err
		}
		if !written {
			hit, err := t.run(ctx, dir, opts, cmd, io)
			if err != nil {
				return 0, 0, err
			}
			switch {
			case hit:
				cached++
			case io[0] != "":
				compiled++
			}
		}
		if step == t.Init {
			// The record modpost reads the init object's CRCs from.
			rec := "cmd_" + filepath.Join(dir, "kelp-init.o") + " := " + cmd + "\n"
			if err := os.WriteFile(filepath.Join(dir, ".kelp-init.o.cmd"), []byte(rec), 0o644); err != nil {
				return 0, 0, err
			}
			objs := []string{filepath.Join(dir, "kelp-init.o")}
			for _, u := range units {
				objs = append(objs, filepath.Join(dir, u))
			}
			kept = keptSymvers(dir, opts.Headers, objs, symvers)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, opts.Name+".ko")); err != nil {
		return 0, 0, &KbuildError{Err: err}
	}
	return cached, compiled, nil
}

// symversInput is how kbuild's modpost command names the kernel's export
// list it reads.
const symversInput = " -i Module.symvers "

// orderPipe is how kbuild's modpost command reads the objects to post:
// modules.order, each NAME.ko line as NAME.o, on its standard input.
var orderPipe = regexp.MustCompile(`^sed 's/ko\$/o/' +(\S+) +\| +(\S.*) -T -$`)

// modpostInput rewrites kbuild's modpost command to read, in place of
// the kernel's whole export list (some 30,000 lines it would read and
// hash for every module), the lines kept (keptSymvers) of the names the
// module's objects have in their symbol tables and of module_layout:
// every name it may look up there (its undefined symbols' CRCs, owners
// and namespaces; its own exports, which must not be the kernel's); and
// to read the objects to post from a file rather than through sed and a
// pipe, so that it runs without a shell. modpost writes the same
// NAME.mod.c either way. A command unlike the template's keeps what it
// does not match.
func modpostInput(dir, cmd string, kept func() (string, error)) (string, error) {
	if strings.Count(cmd, symversInput) == 1 && kept != nil {
		in, err := kept()
		if err != nil {
			return "", err
		}
		cmd = strings.Replace(cmd, symversInput, " -i "+in+" ", 1)
	}
	m := orderPipe.FindStringSubmatch(cmd)
	if m == nil {
		return cmd, nil
	}
	order, err := os.ReadFile(m[1])
	if err != nil {
		return "", err
	}
	var list strings.Builder
	for line := range strings.Lines(string(order)) {
		line = strings.TrimSuffix(line, "\n")
		if s, ok := strings.CutSuffix(line, "ko"); ok {
			line = s + "o"
		}
		list.WriteString(line + "\n")
	}
	objs := filepath.Join(dir, "modpost.objects")
	if err := os.WriteFile(objs, []byte(list.String()), 0o644); err != nil {
		return "", err
	}
	return m[2] + " -T " + objs, nil
}

// keptSymvers starts writing, in dir, the lines of headers' Module.symvers
// that name a symbol of objs (the objects the module links, a superset of
// the linked object's names) or module_layout, and returns a function that
// waits for it and gives the file. index, when not nil, is the list's,
// read ahead (indexSymvers).
func keptSymvers(dir, headers string, objs []string, index *symversIndex) func() (string, error) {
	var file string
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		file, err = writeKeptSymvers(dir, headers, objs, index)
	}()
	return func() (string, error) {
		<-done
		return file, err
	}
}

// writeKeptSymvers is keptSymvers' work: it returns the file written.
func writeKeptSymvers(dir, headers string, objs []string, index *symversIndex) (string, error) {
	// modpost versions every module against module_layout too, which no
	// object names.
	names := map[string]bool{"module_layout": true}
	for _, o := range objs {
		f, err := elf.Open(o)
		if err != nil {
			return "", err
		}
		syms, err := f.Symbols()
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Base(o), err)
		}
		for _, s := range syms {
			names[s.Name] = true
		}
	}
	if index == nil || !index.current() {
		var err error
		if index, err = indexSymvers(headers); err != nil {
			return "", err
		}
	}
	// The kept lines stay in the list's order.
	var at []int
	for name := range names {
		at = append(at, index.byName[name]...)
	}
	slices.Sort(at)
	var kept bytes.Buffer
	for _, i := range at {
		kept.Write(index.lines[i])
	}
	in := filepath.Join(dir, "kernel.symvers")
	return in, os.WriteFile(in, kept.Bytes(), 0o644)
}

// symversIndex is a Module.symvers: its lines, and where each name is.
type symversIndex struct {
	file   string
	key    string // ktree.FileKey of file when read
	lines  [][]byte
	byName map[string][]int // the lines naming each symbol
}

// indexSymvers reads and indexes headers' Module.symvers.
func indexSymvers(headers string) (*symversIndex, error) {
	file := filepath.Join(headers, "Module.symvers")
	key, err := ktree.FileKey(file)
	if err != nil {
		return nil, err
	}
	all, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	x := &symversIndex{file: file, key: key, byName: make(map[string][]int, bytes.Count(all, []byte{'\n'}))}
	for line := range bytes.Lines(all) {
		// CRC, name, module, export type, namespace: tab-separated.
		_, rest, ok := bytes.Cut(line, []byte{'\t'})
		if !ok {
			continue
		}
		if name, _, ok := bytes.Cut(rest, []byte{'\t'}); ok {
			x.byName[string(name)] = append(x.byName[string(name)], len(x.lines))
			x.lines = append(x.lines, line)
		}
	}
	return x, nil
}

// current tells whether the list is still the one read.
func (x *symversIndex) current() bool {
	key, err := ktree.FileKey(x.file)
	return err == nil && key == x.key
}

// write writes the object of a compile step without compiling, when the
// template allows: the init object, or NAME.mod.o from the NAME.mod.c
// modpost wrote when it is the template's but for what modObject writes.
func (t *linkTemplate) write(dir, name, step, out string) (bool, error) {
	var obj []byte
	switch {
	case step == t.Init && t.InitObj != nil:
		obj = t.InitObj
	case step == t.ModCmd && t.ModObj != nil:
		src, err := os.ReadFile(filepath.Join(dir, name+".mod.c"))
		if err != nil {
			return false, err
		}
		ts, err := parseModC(t.ModC)
		if err != nil {
			return false, err
		}
		m, err := parseModC(string(src))
		if err != nil {
			return false, nil
		}
		if obj, err = modObject(t.ModObj, ts, name, m); err != nil {
			return false, nil
		}
	default:
		return false, nil
	}
	return true, os.WriteFile(filepath.Join(dir, out), obj, 0o644)
}

// run runs one step; a compile (io names its source and object in dir)
// is taken from the cache of compiled objects when it has been run on
// the same source before (hit).
func (t *linkTemplate) run(ctx context.Context, dir string, opts Options, cmd string, io [2]string) (hit bool, err error) {
	var cached string
	if io[0] != "" && t.cache != "" {
		src, err := os.ReadFile(filepath.Join(dir, io[0]))
		if err != nil {
			return false, err
		}
		cached = filepath.Join(t.cache, ktree.Digest(t.key, opts.Name, io[0], string(src))+".o")
		if data, err := os.ReadFile(cached); err == nil {
			return true, os.WriteFile(filepath.Join(dir, io[1]), data, 0o644)
		}
	}
	var c *exec.Cmd
	if argv, ok := plainCommand(cmd); ok {
		c = opts.Exec.Command(ctx, opts.Headers, nil, argv[0], argv[1:]...)
	} else {
		c = opts.Exec.Command(ctx, opts.Headers, nil, "sh", "-c", cmd)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return false, &KbuildError{Err: err, Output: cmd + "\n" + string(out)}
	}
	if cached == "" {
		return false, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, io[1]))
	if err != nil {
		return false, err
	}
	return false, atomicfile.WriteFile(cached, data, 0o644)
}

// plainCommand splits cmd into its words when the shell would run it as
// they are: words of letters, digits and -_./,:=+@%^ only, the first
// without '=' (an assignment). kbuild's final link ends in "; true" (no
// ARCH_POSTLINK), which adds nothing but hides the link's exit status;
// it is left out.
func plainCommand(cmd string) ([]string, bool) {
	cmd = strings.TrimSpace(cmd)
	if c, ok := strings.CutSuffix(cmd, "true"); ok {
		if c, ok = strings.CutSuffix(strings.TrimRight(c, " "), ";"); ok {
			cmd = strings.TrimSpace(c)
		}
	}
	for _, r := range cmd {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" -_./,:=+@%^", r)) {
			return nil, false
		}
	}
	argv := strings.Fields(cmd)
	if len(argv) == 0 || strings.Contains(argv[0], "=") {
		return nil, false
	}
	return argv, true
}
