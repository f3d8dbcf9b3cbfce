package ktree_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/ktree"
)

// originalObjects span a built-in object, a single-object module (objtool
// --module), objects of a multi-object module and of another subsystem.
var originalObjects = []string{"fs/proc/cmdline.o", "drivers/block/brd.o", "fs/ext4/hash.o", "kernel/livepatch/shadow.o",
	"drivers/usb/core/hcd.o"}

// leakedObject is a module object that a Makefile other than its own
// directory's would also compile, as built-in code, when make is asked
// for it alone: drivers/Makefile lists both char/ipmi/ and char/, and
// kbuild hands the single target to both. Such a make races two
// compiles of one file (with -j) or ends with the built-in one, so it
// is no reference; kelp's command must be the one of the object's own
// directory, the one a whole build runs.
const leakedObject, leakedModule = "drivers/char/ipmi/ipmi_msghandler.o", "ipmi_msghandler"

// TestOriginalIsKbuilds: kelp's command for an object, known without
// building anything, is the command kbuild records when make builds it,
// and the object kelp compiles with it (and -pipe, viaPipe) is kbuild's,
// byte for byte.
func TestOriginalIsKbuilds(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree := ownCacheTree(t, k)
	built, err := k.Objects(ctx, originalObjects)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(built))
	for i, b := range built {
		paths[i] = b.Path
	}
	compareWithKbuild(t, tree, originalObjects, paths)
	for _, b := range built {
		cmd, err := tree.Command(b.Name)
		if err != nil {
			t.Fatal(err)
		}
		if owner := ktree.OwnerOf(cmd); (owner != ktree.Vmlinux) != b.Module {
			t.Errorf("%s: owner %s from kelp's command; kbuild built it as a module: %v", b.Name, owner, b.Module)
		}
	}
	cmd, err := tree.Command(leakedObject)
	if err != nil {
		t.Fatal(err)
	}
	if owner := ktree.OwnerOf(cmd); owner != leakedModule || !strings.Contains(cmd, " -DMODULE ") {
		t.Errorf("%s: owner %s, want the module %s of its own directory: %s", leakedObject, owner, leakedModule, cmd)
	}
	// Its exports' CRCs come with the cached object.
	_, crcs, hit, err := tree.Original(ctx, "kernel/livepatch/shadow.o")
	if err != nil {
		t.Fatal(err)
	}
	if !hit || crcs["klp_shadow_get"] == 0 {
		t.Errorf("kernel/livepatch/shadow.o again: from the cache %v, CRCs %v", hit, crcs)
	}
}

// TestOriginalIsKbuilds612 is TestOriginalIsKbuilds in the Debian 13 build
// root: the dry run, the compile and objtool run inside it with its
// gcc-14, and the objects are those kbuild's make builds there.
func TestOriginalIsKbuilds612(t *testing.T) {
	k := testenv.RequireKernelOf(t, func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") })
	ctx := context.Background()
	tree, err := k.Tree(ctx)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	if tree.Exec == nil {
		t.Fatalf("the tree of %s is not compiled in a build root", k.Release)
	}
	tree.ObjectCache = t.TempDir()
	objs := []string{"fs/proc/cmdline.o", "drivers/block/brd.o", "kernel/livepatch/shadow.o"}
	// kbuild builds them in the tree, under the tree's lock, as
	// kernel objects were built before kelp compiled them itself.
	unlock, err := sys.LockPath(tree.Dir + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tree.Exec.Command(ctx, tree.Dir, nil, "make", append(append([]string{"-s", "KCFLAGS=" + ktree.ObjectFlags}, ktree.KeptTools...), objs...)...).CombinedOutput()
	paths := make([]string, len(objs))
	dir := t.TempDir()
	for i, o := range objs {
		if err == nil {
			paths[i] = filepath.Join(dir, o)
			err = copyOut(filepath.Join(tree.Dir, o), paths[i])
		}
	}
	unlock()
	if err != nil {
		t.Fatalf("kbuild: %v\n%s", err, out)
	}
	compareWithKbuild(t, tree, objs, paths)
}

// otherMakefileObjects are objects the Makefile of another directory
// builds, with its own include flags and module name, under a name with
// ../: amdgpu's display and power-management code, and KVM's common code
// built into kvm.ko.
var otherMakefileObjects = []struct{ name, kbuild, module, function string }{
	{"drivers/gpu/drm/amd/display/dc/basics/vector.o", "drivers/gpu/drm/amd/amdgpu/../display/dc/basics/vector.o", "amdgpu", "dal_vector_create"},
	{"drivers/gpu/drm/amd/pm/powerplay/hwmgr/hwmgr.o", "drivers/gpu/drm/amd/amdgpu/../pm/powerplay/hwmgr/hwmgr.o", "amdgpu", "hwmgr_early_init"},
	{"virt/kvm/eventfd.o", "arch/x86/kvm/../../../virt/kvm/eventfd.o", "kvm", "kvm_irqfd"},
}

// TestObjectOfAnotherMakefile: an object another directory's Makefile
// builds is compiled with that Makefile's command (its include flags,
// -DMODULE and KBUILD_MODNAME of the module it is linked into), the
// command kbuild records when make builds it, and kelp's object is
// kbuild's, byte for byte.
func TestObjectOfAnotherMakefile(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree := ownCacheTree(t, k)
	var names, kbuildNames []string
	for _, o := range otherMakefileObjects {
		names = append(names, o.name)
		kbuildNames = append(kbuildNames, o.kbuild)
	}
	unlock, err := sys.LockPath(tree.Dir + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "make", append(append([]string{"-s", "KCFLAGS=" + ktree.ObjectFlags}, ktree.KeptTools...), kbuildNames...)...)
	cmd.Dir = tree.Dir
	out, err := cmd.CombinedOutput()
	paths := make([]string, len(names))
	dir := t.TempDir()
	for i, o := range names {
		if err == nil {
			paths[i] = filepath.Join(dir, o)
			err = copyOut(filepath.Join(tree.Dir, o), paths[i])
		}
	}
	unlock()
	if err != nil {
		t.Fatalf("kbuild: %v\n%s", err, out)
	}
	compareWithKbuildNames(t, tree, names, kbuildNames, paths)
	for _, o := range otherMakefileObjects {
		cmd, err := tree.Command(o.name)
		if err != nil {
			t.Fatal(err)
		}
		if owner := ktree.OwnerOf(cmd); owner != o.module {
			t.Errorf("%s: owner %s, want %s", o.name, owner, o.module)
		}
		obj, _, _, err := tree.Original(ctx, o.name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elfobj.ReadFile(obj)
		if err != nil {
			t.Fatal(err)
		}
		if f.Symbol(o.function) == nil {
			t.Errorf("%s: no symbol %s", o.name, o.function)
		}
	}
}

func copyOut(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return exec.Command("cp", src, dst).Run()
}

// compareWithKbuild checks kelp's command and original object of each of
// names against kbuild's record in the tree and kbuild's object at
// built[i].
func compareWithKbuild(t *testing.T, tree *ktree.Tree, names, built []string) {
	t.Helper()
	compareWithKbuildNames(t, tree, names, names, built)
}

// compareWithKbuildNames is compareWithKbuild for objects kbuild names
// kbuildNames[i] (with ../ when another directory's Makefile builds it).
func compareWithKbuildNames(t *testing.T, tree *ktree.Tree, names, kbuildNames, built []string) {
	t.Helper()
	ctx := context.Background()
	for i, name := range names {
		kname := kbuildNames[i]
		cmd, err := tree.Command(name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := os.ReadFile(filepath.Join(tree.Dir, filepath.Dir(name), "."+filepath.Base(name)+".cmd"))
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(string(rec), "\n")
		want, ok := strings.CutPrefix(line, "cmd_"+kname+" := ")
		if !ok {
			want, ok = strings.CutPrefix(line, "savedcmd_"+kname+" := ")
		}
		if !ok || cmd != want {
			t.Errorf("%s: command\n%s\nkbuild recorded\n%s", name, cmd, line)
		}
		obj, _, hit, err := tree.Original(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if hit {
			t.Errorf("%s: found in an empty cache", name)
		}
		got, err := os.ReadFile(obj)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := os.ReadFile(built[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, kb) {
			t.Errorf("%s: kelp's original object (%d bytes) differs from kbuild's (%d bytes)", name, len(got), len(kb))
		}
	}
}

// TestOriginalCache: a second request is served from the cache, also by
// another Tree of the same directory; a change to a header the compiler
// read, to the command line (through the directory's Makefile) or to the
// config compiles the object again. The changes are made in a copy of the
// test tree whose files are hard links, each changed file replaced, never
// written in place.
func TestOriginalCache(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	base, err := k.Tree(ctx)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	copyDir := filepath.Join(t.TempDir(), "tree")
	if out, err := exec.Command("cp", "-al", base.Dir, copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp -al: %v\n%s", err, out)
	}
	cache := t.TempDir()
	open := func() *ktree.Tree {
		return &ktree.Tree{Dir: copyDir, Release: base.Release, Config: base.Config, Headers: base.Headers, Jobs: 1, ObjectCache: cache}
	}
	const name = "fs/proc/version.o"
	request := func(tree *ktree.Tree, what string, wantHit bool) string {
		t.Helper()
		obj, _, hit, err := tree.Original(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if hit != wantHit {
			t.Fatalf("%s: from the cache %v, want %v", what, hit, wantHit)
		}
		return obj
	}
	tree := open()
	first := request(tree, "first request", false)
	if again := request(tree, "second request", true); again != first {
		t.Fatalf("second request: %s, first %s", again, first)
	}
	deps, err := tree.OriginalDeps(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fs/proc/version.c", "include/linux/seq_file.h", "include/generated/autoconf.h"} {
		if !deps[want] {
			t.Errorf("the dependencies lack %s", want)
		}
	}
	request(open(), "another Tree of the same directory", true)

	edit := func(rel string, change func([]byte) []byte, keepTime bool) {
		t.Helper()
		p := filepath.Join(copyDir, rel)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// A new file, not a write into the hard link.
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, change(data), st.Mode()); err != nil {
			t.Fatal(err)
		}
		if keepTime {
			if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
		}
	}
	replace := func(rel, appended string, keepTime bool) {
		t.Helper()
		edit(rel, func(b []byte) []byte { return append(b, appended...) }, keepTime)
	}
	// stats reads the entry's record of its dependencies' inodes.
	stats := func() map[string]string {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(cache, "*", "entry.json"))
		if err != nil || len(files) != 1 {
			t.Fatalf("entries %q, %v", files, err)
		}
		var e struct {
			Deps  [][2]string
			Stats []string
		}
		data, err := os.ReadFile(files[0])
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if err != nil || len(e.Stats) != len(e.Deps) {
			t.Fatalf("entry %s: %d dependencies, %d inode states, %v", files[0], len(e.Deps), len(e.Stats), err)
		}
		m := map[string]string{}
		for i, d := range e.Deps {
			m[d[0]] = e.Stats[i]
		}
		return m
	}
	const header = "include/linux/seq_file.h"
	// The copy's files are old but their inodes changed as cp linked them,
	// within the hour: with an hour to settle, none vouches for its
	// content.
	restore := ktree.SetSettle(time.Hour)
	defer ktree.SetSettle(restore)
	os.RemoveAll(cache)
	request(open(), "with an hour to settle", false)
	for d, st := range stats() {
		if st != "" {
			t.Fatalf("%s: inode state %q recorded for a file changed a moment ago", d, st)
		}
	}
	// Once settled, the inodes vouch: a header replaced by a file of the
	// same size and times but another byte (a new inode) is read again and
	// found changed; one replaced by the same bytes is read and found
	// unchanged.
	ktree.SetSettle(0)
	os.RemoveAll(cache)
	request(open(), "with settled dependencies", false)
	if st := stats(); st["fs/proc/version.c"] == "" || st[header] == "" {
		t.Fatalf("no inode state recorded for settled dependencies: %q", st)
	}
	hashed := func(what string, want int64, do func()) {
		t.Helper()
		before := ktree.FilesHashed()
		do()
		if got := ktree.FilesHashed() - before; got != want {
			t.Errorf("%s: %d files read to hash them, want %d", what, got, want)
		}
	}
	hashed("a request with the inodes as they were", 0, func() { request(open(), "with the inodes as they were", true) })
	// An entry written without inode states (as kelp wrote them before)
	// is read through once, and then has them.
	files, _ := filepath.Glob(filepath.Join(cache, "*", "entry.json"))
	var raw map[string]any
	data, err := os.ReadFile(files[0])
	if err == nil {
		err = json.Unmarshal(data, &raw)
	}
	if err != nil {
		t.Fatal(err)
	}
	ndeps := int64(len(raw["deps"].([]any)))
	delete(raw, "stats")
	if data, err = json.Marshal(raw); err == nil {
		err = os.WriteFile(files[0], data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	hashed("a request of an entry without inode states", ndeps, func() { request(open(), "without inode states", true) })
	hashed("the next request", 0, func() { request(open(), "with the inode states written back", true) })
	edit(header, func(b []byte) []byte { return b }, true)
	hashed("a request after the header is replaced by the same bytes", 1, func() {
		request(tree, "after the header is replaced by the same bytes", true)
	})
	edit(header, func(b []byte) []byte {
		c := bytes.Clone(b)
		i := bytes.Index(c, []byte("GPL"))
		if i < 0 {
			t.Fatalf("%s has no GPL in its licence line", header)
		}
		c[i+2] = 'X'
		return c
	}, true)
	request(tree, "after a header byte changes (same size and times)", false)
	request(tree, "again after the byte change", true)

	replace(header, "\n/* changed */\n", false)
	request(tree, "after a header change", false)
	request(tree, "again after the header change", true)

	replace("fs/proc/Makefile", "\nCFLAGS_version.o += -DKELP_CACHE_TEST\n", false)
	tree = open()
	cmd, err := tree.Command(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmd, "-DKELP_CACHE_TEST") {
		t.Fatalf("the command does not follow the Makefile: %s", cmd)
	}
	request(tree, "after a command line change", false)
	request(tree, "again after the command line change", true)

	// The config's time is kept, so make does not regenerate the tree's
	// configuration files (hard links) from it.
	replace(".config", "\n# changed\n", true)
	tree = open()
	request(tree, "after a config change", false)
	request(tree, "again after the config change", true)
}

// TestPatchedCodeWithoutDebugInfo: a patched object is compiled without
// debug information; compiled so from the unchanged source, it has the
// original object's code and data exactly (every allocated section's
// bytes and relocations, by symbol name), and no DWARF. Objects of four
// subsystems, built-in and module code.
func TestPatchedCodeWithoutDebugInfo(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree := ownCacheTree(t, k)
	dir := t.TempDir()
	for _, obj := range originalObjects {
		orig, _, _, err := tree.Original(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		patched, err := tree.CompileUnchanged(ctx, obj, dir)
		if err != nil {
			t.Fatal(err)
		}
		a, b := allocated(t, orig), allocated(t, patched)
		if len(a) == 0 || a[".debug_info"] == "" {
			t.Fatalf("%s: the original has %d allocated sections and debug info %v; the comparison would prove nothing", obj, len(a), a[".debug_info"] != "")
		}
		if b[".debug_info"] != "" {
			t.Errorf("%s: the patched compile made debug information", obj)
		}
		delete(a, ".debug_info")
		delete(b, ".debug_info")
		for name, want := range a {
			if b[name] != want {
				t.Errorf("%s: section %s differs without debug information", obj, name)
			}
		}
		for name := range b {
			if _, ok := a[name]; !ok {
				t.Errorf("%s: section %s only without debug information", obj, name)
			}
		}
	}
}

// TestPipedCompile checks that handing the assembly to the assembler
// through a pipe (viaPipe) changes no byte of a patched compile's object,
// on objects of two subsystems. (The originals, compiled the same way,
// are make's own objects byte for byte: TestOriginalIsKbuilds.)
func TestPipedCompile(t *testing.T) {
	k := testenv.RequireKernel(t)
	ctx := context.Background()
	tree := ownCacheTree(t, k)
	for _, obj := range originalObjects[:2] {
		piped, err := tree.CompileUnchanged(ctx, obj, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		unpiped, err := tree.CompileUnchangedUnpiped(ctx, obj, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sameFile(t, obj+": the patched compile, piped and not", piped, unpiped)
	}
}

// sameFile fails the test when files a and b differ in a byte.
func sameFile(t *testing.T, what, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Errorf("%s differ (%d bytes, %d)", what, len(x), len(y))
	}
}

// allocated reads an object's allocated sections: name to a digest of
// the bytes and of the relocations (offset, type, addend and the symbol
// or section they name); ".debug_info" is there when the object has it.
func allocated(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, s := range f.Sections {
		if s.Name == ".debug_info" {
			out[s.Name] = "present"
		}
		if s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		var b strings.Builder
		if s.Type != elf.SHT_NOBITS {
			data, err := s.Data()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%x\n", sha256.Sum256(data))
		}
		fmt.Fprintf(&b, "size %d\n", s.Size)
		for _, r := range f.Sections {
			if r.Type != elf.SHT_RELA || int(r.Info) != i {
				continue
			}
			data, err := r.Data()
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off+24 <= len(data); off += 24 {
				info := binary.LittleEndian.Uint64(data[off+8:])
				sym, typ := int(info>>32), elf.R_X86_64(info&0xffffffff)
				name := "-"
				if sym > 0 && sym-1 < len(syms) {
					name = syms[sym-1].Name
					if elf.ST_TYPE(syms[sym-1].Info) == elf.STT_SECTION {
						name = "section " + f.Sections[syms[sym-1].Section].Name
					}
				}
				fmt.Fprintf(&b, "%d %v %d %s\n", binary.LittleEndian.Uint64(data[off:]), typ, int64(binary.LittleEndian.Uint64(data[off+16:])), name)
			}
		}
		key := s.Name
		for n := 2; out[key] != ""; n++ {
			key = fmt.Sprintf("%s#%d", s.Name, n) // a name several sections have
		}
		out[key] = b.String()
	}
	return out
}

// ownCacheTree is k's source tree with an object cache of the test's own.
func ownCacheTree(t *testing.T, k *testenv.Kernel) *ktree.Tree {
	t.Helper()
	tree, err := k.Tree(context.Background())
	if err != nil {
		testenv.MissingOr(t, err)
	}
	tree.ObjectCache = t.TempDir()
	return tree
}

// TestTreeTakesTargetObjtool: a tree extracted from the kernel's source
// package runs the objtool of the target's kbuild directory on what it
// compiles (its own is not built), on Debian 12's kernel and, in the
// Debian 13 build root, on 6.12's (whose kbuild package has one per
// architecture, which objtool runs by kbuild's SRCARCH).
func TestTreeTakesTargetObjtool(t *testing.T) {
	for _, find := range []func() (*testenv.Kernel, error){testenv.DefaultKernel, func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") }} {
		k := testenv.RequireKernelOf(t, find)
		tree, err := k.Tree(context.Background())
		if err != nil {
			testenv.MissingOr(t, err)
		}
		// Debian 13's objtool in the headers runs objtool.real-x86.
		target := filepath.Join(tree.Headers, "tools", "objtool", "objtool")
		if _, err := os.Stat(target + ".real-x86"); err == nil {
			target += ".real-x86"
		}
		want, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(tree.Dir, "tools", "objtool", "objtool"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the tree's objtool (%d bytes) is not the target's (%d bytes)", k.Release, len(got), len(want))
		}
		if _, err := os.Stat(filepath.Join(tree.Dir, "tools", "objtool", "objtool-in.o")); !os.IsNotExist(err) {
			t.Errorf("%s: the tree built objtool (%v)", k.Release, err)
		}
	}
}
