package klpmod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/ktree"
)

// The module is linked without make: kbuild links a template module once
// per kernel headers directory, and the commands it records for it (the
// init file's compile with objtool, the composite link, modpost, the
// .mod.c compile and the final link with the module linker script) are
// replayed for each module with its name and directory. The output is
// what kbuild itself produces from the same objects.

// linkVersion names the layout of a recorded template.
const linkVersion = "modlink-v2"

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
	ModObj    string `json:"mod_o"`   // NAME.mod.o
	Final     string `json:"ko"`      // NAME.ko

	key   string // digest of the recorded template
	cache string // where compiled init and .mod objects are kept
}

// steps returns the commands in the order they run.
func (t *linkTemplate) steps() []string {
	return []string{t.Init, t.Composite, t.Modpost, t.ModObj, t.Final}
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
// (one kbuild run) the first time.
func templateFor(ctx context.Context, opts Options) (*linkTemplate, error) {
	cache := opts.CacheDir
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("cache directory: %w", err)
		}
		cache = filepath.Join(base, "kelp", "modlink")
	}
	var keys []string
	for _, f := range []string{"Makefile", ".config", "Module.symvers", "scripts/mod/modpost", "arch/x86/module.lds", "scripts/module.lds",
		"tools/objtool/objtool", "include/generated/autoconf.h", "include/config/kernel.release"} {
		k, err := ktree.FileKey(filepath.Join(opts.Headers, f))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		keys = append(keys, k)
	}
	abs, err := filepath.Abs(opts.Headers)
	if err != nil {
		return nil, err
	}
	where := "host"
	if opts.Exec != nil {
		where = opts.Exec.Dir
	}
	file := filepath.Join(cache, ktree.Digest(append([]string{linkVersion, where, abs, os.Getenv("KCFLAGS")}, keys...)...)+".json")
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
	t.key = ktree.Digest(file, t.Init, t.ModObj, t.CCKey)
	t.cache = filepath.Join(cache, "objects")
	return t, nil
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

// recordTemplate has kbuild link a template module (an init file and one
// prebuilt unit) and reads back the commands it recorded.
func recordTemplate(ctx context.Context, opts Options) (*linkTemplate, error) {
	tmp, err := os.MkdirTemp("", "kelp-modlink-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "kbuild")
	unit := filepath.Join(tmp, "unit.c")
	if err := os.WriteFile(unit, []byte("int kelp_template_unit;\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := opts.Exec.Command(ctx, tmp, nil, "gcc", "-c", "-o", filepath.Join(dir, "kelp-u0.o_shipped"), unit).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gcc: %v: %s", err, out)
	}
	init := "#include <linux/module.h>\n#include <linux/livepatch.h>\n" +
		"static int __init kelp_init(void) { return 0; }\nstatic void __exit kelp_exit(void) { }\n" +
		"module_init(kelp_init);\nmodule_exit(kelp_exit);\nMODULE_LICENSE(\"GPL\");\nMODULE_INFO(livepatch, \"Y\");\n"
	if err := layout(dir, tmplName, []string{"kelp-u0.o"}, init); err != nil {
		return nil, err
	}
	o := opts
	o.Name = tmplName
	if err := runKbuild(ctx, dir, o, 1); err != nil {
		return nil, err
	}
	t := &linkTemplate{Dir: dir}
	for _, r := range []struct {
		field *string
		file  string
	}{
		{&t.Init, "kelp-init.o"}, {&t.Composite, tmplName + ".o"}, {&t.Modpost, "Module.symvers"},
		{&t.ModObj, tmplName + ".mod.o"}, {&t.Final, tmplName + ".ko"},
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
			return nil, fmt.Errorf("kbuild's record of %s not understood: %q", r.file, line)
		}
		// The record is make syntax: $$ is one $.
		*r.field = strings.ReplaceAll(strings.TrimSpace(cmd), "$$", "$")
	}
	t.CC, _, _ = strings.Cut(t.Init, " ")
	if t.CCKey, err = ktree.CompilerID(ctx, opts.Exec, t.CC); err != nil {
		return nil, err
	}
	return t, nil
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
func linkDirect(ctx context.Context, dir string, opts Options, units []string, t *linkTemplate) (cached int, err error) {
	var list strings.Builder
	for _, o := range append([]string{"kelp-init.o"}, units...) {
		list.WriteString(filepath.Join(dir, o) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, opts.Name+".mod"), []byte(list.String()), 0o644); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.order"), []byte(filepath.Join(dir, opts.Name+".ko")+"\n"), 0o644); err != nil {
		return 0, err
	}
	r := strings.NewReplacer(t.Dir, dir, tmplName, opts.Name)
	// The two compiles (the init file and NAME.mod.c) are kept by
	// content: their objects depend on the template, the module name and
	// the source, not on where the module is built (-ffile-prefix-map).
	compiled := map[string][2]string{
		t.Init:   {"kelp-init.c", "kelp-init.o"},
		t.ModObj: {opts.Name + ".mod.c", opts.Name + ".mod.o"},
	}
	for _, step := range t.steps() {
		cmd := r.Replace(step)
		hit, err := t.run(ctx, dir, opts, cmd, compiled[step])
		if err != nil {
			return 0, err
		}
		if hit {
			cached++
		}
		if step == t.Init {
			// The record modpost reads the init object's CRCs from.
			rec := "cmd_" + filepath.Join(dir, "kelp-init.o") + " := " + cmd + "\n"
			if err := os.WriteFile(filepath.Join(dir, ".kelp-init.o.cmd"), []byte(rec), 0o644); err != nil {
				return 0, err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, opts.Name+".ko")); err != nil {
		return 0, &KbuildError{Err: err}
	}
	return cached, nil
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
	out, err := opts.Exec.Command(ctx, opts.Headers, nil, "sh", "-c", cmd).CombinedOutput()
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
