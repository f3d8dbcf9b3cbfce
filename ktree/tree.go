package ktree

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/internal/sys"
)

// ObjectFlags are the flags kelp adds to the kernel's own when it compiles
// objects to diff: one section per function and per data object.
const ObjectFlags = "-ffunction-sections -fdata-sections"

// Tree is a kernel source tree prepared to compile objects of one target
// kernel (make olddefconfig modules_prepare with the target's config).
type Tree struct {
	Dir     string // the prepared tree
	Release string // target kernel release, e.g. 6.1.0-56-amd64
	Config  string // the target's config (before olddefconfig)
	Headers string // the target's kbuild directory (Module.symvers, for linking)
	Jobs    int    // parallel compiles
	// NoHeads compiles every patched copy whole: no precompiled head is
	// made or used (pch.go).
	NoHeads bool
	// Exec is the build root kbuild and the compiler run in (nil: the
	// host); SysRoot is where the target's system files are (its Dir, or
	// "" for the host's).
	Exec    *buildroot.Root
	SysRoot string
	// ObjectCache holds compiled original objects (default
	// $XDG_CACHE_HOME/kelp/objects).
	ObjectCache string

	envOnce sync.Once
	env     []string
	envErr  error
	ccMu    sync.Mutex
	tools   map[string]string
	cmdMu   sync.Mutex
	cmds    map[string]string

	// hashed holds the sums of files hashed in the tree's lifetime
	// (hashedKey → hex digest), for fileSums.
	hashed sync.Map

	objsOnce sync.Once
	objs     *objectNames
	objsErr  error
	// objCmdsFile records the commands of the whole tree's dry run
	// (set with objs).
	objCmdsFile string
}

// Options say which tree to prepare for which kernel. Only Release is
// needed on a Debian system with the kernel's packages installed.
type Options struct {
	Release string // target kernel release (default: the running one)
	// SourceDir is a kernel source tree to use; kelp never writes into
	// it: a copy in CacheDir is prepared, and made again when the tree
	// changes. Empty: extract SourceTar into CacheDir.
	SourceDir string
	// SourceTar is the kernel source tarball; empty: the installed
	// linux-source-<version> package, which must be of the same Debian
	// version as the kernel image package.
	SourceTar string
	Config    string // default /boot/config-<release>
	Headers   string // default /usr/src/linux-headers-<release>
	// CacheDir holds extracted trees (default $XDG_CACHE_HOME/kelp/trees).
	CacheDir string
	// Dir, when set, is the exact directory of the extracted tree
	// (CacheDir and the default naming are not used).
	Dir string
	// SkipCompilerCheck builds even when gcc is not the compiler the
	// kernel was built with.
	SkipCompilerCheck bool
	Jobs              int // default: all cores
	// NoHeads: see Tree.
	NoHeads bool
	// ObjectCache holds compiled original objects (default
	// $XDG_CACHE_HOME/kelp/objects).
	ObjectCache string
	// Step reports long steps (extracting, preparing) before they start.
	Step func(msg string)
	// HeadersReady, when set, is called once the kernel's kbuild
	// directory (the Tree's Headers), the target's system root (the
	// Tree's SysRoot) and the build root are known and checked, before
	// the source tree is extracted or prepared, so that work needing only
	// those can run meanwhile.
	HeadersReady func(headers, sysroot string, exec *buildroot.Root)
	// Root is prepended to the default system paths (tests).
	Root string
	// BuildRoot says where the compiler runs: "" (auto) in a Debian build
	// root of the kernel's own release when the host is another Debian
	// release, "host" always on this machine.
	BuildRoot string
	// RootCacheDir holds build roots (default $XDG_CACHE_HOME/kelp/roots).
	RootCacheDir string
	// Version is the Debian version of the build of Release to build for
	// (a kelp symbols dump names it): the default headers, config and
	// source are of that version, fetched into the cache when the
	// installed ones are of another. Empty: the installed image's.
	Version string
}

// CompilerMismatchError reports that the local gcc is not the compiler
// that built the target kernel: objects would differ from the running
// code in ways no diff can tell from a patch.
type CompilerMismatchError struct {
	Kernel, Local string
}

func (e *CompilerMismatchError) Error() string {
	return fmt.Sprintf("compiler %q differs from the one that built the kernel (%q); install that compiler, or build anyway with --skip-compiler-check", e.Local, e.Kernel)
}

// Open locates (extracting and preparing it the first time) the source
// tree for the target kernel of opts.
func Open(ctx context.Context, opts Options) (*Tree, error) {
	if opts.Release == "" {
		rel, err := runningRelease()
		if err != nil {
			return nil, err
		}
		opts.Release = rel
	}
	if err := checkNull(nullDevice); err != nil {
		return nil, err
	}
	step := opts.Step
	if step == nil {
		step = func(string) {}
	}
	t := &Tree{Release: opts.Release, Config: opts.Config, Headers: opts.Headers, Jobs: opts.Jobs, NoHeads: opts.NoHeads, ObjectCache: opts.ObjectCache}
	if opts.Root == "" && opts.BuildRoot != "host" {
		if suite, ok := buildroot.SuiteOf(opts.Release); ok && suite != buildroot.HostSuite() {
			r, k, err := openBuildRoot(ctx, suite, opts.Release, opts.RootCacheDir, step)
			if err != nil {
				return nil, err
			}
			if opts.Version != "" && k.Version != opts.Version {
				return nil, fmt.Errorf("kernel %s: the symbols are of its Debian build %s, the %s build root has %s (the version its apt sources offer): build where that version's packages are available, or give --sourcedir, --config and --headers of that build", opts.Release, opts.Version, suite, k.Version)
			}
			t.Exec, t.SysRoot, opts.Root = r, r.Dir, r.Dir
			if opts.SourceTar == "" && opts.SourceDir == "" {
				opts.SourceTar = k.SourceTar
			}
			r.Bind(opts.SourceDir, opts.Headers, opts.CacheDir, opts.Dir, opts.ObjectCache)
		}
	}
	t.SysRoot = opts.Root
	cache := opts.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	// fetchedVersion is the Debian version of the build to build for: of
	// the headers fetched into the cache, or the one opts names.
	var fetchedVersion string
	fetched := false
	if t.Headers == "" {
		t.Headers = filepath.Join(opts.Root, "/usr/src", "linux-headers-"+opts.Release)
		installed := fileExists(t.Headers)
		var other string // the installed headers' version, when not the one wanted
		if installed && opts.Version != "" && opts.Root == "" {
			if v, err := DpkgVersion(ctx, "linux-headers-"+opts.Release); err == nil && v != opts.Version {
				other = v
			}
		}
		if (!installed || other != "") && debianHost() {
			// Not installed, or of another build: the headers package of
			// the wanted version (the image's, or without the image the
			// one apt offers) into the cache.
			want := opts.Version
			if want == "" {
				_, want, _ = kernelPackage(ctx, opts.Release)
			}
			if other != "" {
				step(fmt.Sprintf("the installed linux-headers-%s are of Debian build %s, the symbols of %s", opts.Release, other, want))
			}
			h, err := FetchHeaders(ctx, opts.Release, want, filepath.Join(filepath.Dir(cache), "headers"), step)
			switch {
			case err != nil && other != "":
				return nil, fmt.Errorf("kernel %s: the symbols are of its Debian build %s, the installed headers of %s, and fetching those of %s failed: %w (give --config and --headers of that build)", opts.Release, want, other, want, err)
			case err != nil:
				return nil, fmt.Errorf("kernel %s: its headers are not installed, and fetching them failed: %w (install linux-headers-%s, or give --config and --headers)", opts.Release, err, opts.Release)
			}
			t.Headers, fetchedVersion, fetched = h.Dir, h.Version, true
		}
	}
	if fetchedVersion == "" {
		fetchedVersion = opts.Version
	}
	if t.Config == "" && fetched {
		// Headers fetched for this build carry its config.
		t.Config = filepath.Join(t.Headers, ".config")
	}
	if t.Config == "" {
		t.Config = filepath.Join(opts.Root, "/boot", "config-"+opts.Release)
		// A build machine without the kernel installed has its config
		// in the headers package (Debian ships it as .config there).
		if _, err := os.Stat(t.Config); errors.Is(err, fs.ErrNotExist) {
			if hc := filepath.Join(t.Headers, ".config"); fileExists(hc) {
				t.Config = hc
			}
		}
	}
	if t.Jobs <= 0 {
		t.Jobs = runtime.NumCPU()
	}
	cfg, err := os.ReadFile(t.Config)
	if err != nil && opts.Config == "" && opts.Root == "" && !fileExists(t.Headers) {
		return nil, fmt.Errorf("kernel %s is not on this machine: neither %s nor linux-headers-%s is installed (install linux-headers-%s, the kernel itself is not needed; or give --config and --headers)", opts.Release, t.Config, opts.Release, opts.Release)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel config of %s: %w (give --config)", opts.Release, err)
	}
	if err := checkCompiler(ctx, t.Exec, cfg, opts.SkipCompilerCheck); err != nil {
		return nil, err
	}
	if opts.HeadersReady != nil {
		opts.HeadersReady(t.Headers, t.SysRoot, t.Exec)
	}
	switch {
	case opts.SourceDir != "":
		if t.Dir, err = preparedCopy(ctx, t.Exec, opts.SourceDir, cache, opts.Release, cfg, t.Jobs, step); err != nil {
			return nil, err
		}
		if err := checkPrepared(t.Dir, cfg); err != nil {
			return nil, err
		}
		return t, nil
	case opts.SourceTar == "":
		tar, err := debianSource(ctx, opts.Root, opts.Release, fetchedVersion, filepath.Join(filepath.Dir(cache), "sources"), step)
		if err != nil {
			return nil, err
		}
		opts.SourceTar = tar
	}
	dir := opts.Dir
	if dir == "" {
		tarKey, err := FileKey(opts.SourceTar)
		if err != nil {
			return nil, fmt.Errorf("kernel source: %w", err)
		}
		dir = filepath.Join(cache, opts.Release+"-"+Digest(tarKey, string(cfg), TreeLayout))
	}
	t.Dir, err = Cached(dir, func(dir string) error {
		arch := srcArch(cfg)
		step("extracting " + opts.SourceTar + " into " + dir)
		if err := run(ctx, nil, dir, "tar", extractArgs(opts.SourceTar, topDir(ctx, opts.SourceTar), arch)...); err != nil {
			return fmt.Errorf("extract %s: %w", opts.SourceTar, err)
		}
		// The names built-in code registers its parameters under are
		// read from the sources while make prepares the tree.
		names := make(chan error, 1)
		go func() {
			_, err := keepParamPrefixNames(ctx, dir)
			names <- err
		}()
		step("preparing the tree (make olddefconfig modules_prepare)")
		err := prepare(ctx, t.Exec, dir, cfg, t.Jobs, targetObjtool(t.Headers, arch))
		if nerr := <-names; err == nil && nerr != nil {
			err = fmt.Errorf("module names of the tree: %w", nerr)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := checkPrepared(t.Dir, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// TreeLayout names what an extracted tree holds of its tarball
// (extractArgs) and where its objtool comes from (prepare): part of a
// cached tree's name.
const TreeLayout = "tree-v6"

// arches are the architectures of arch/ in Linux 6.1 to 6.12.
var arches = []string{"alpha", "arc", "arm", "arm64", "csky", "hexagon", "ia64", "loongarch", "m68k", "microblaze",
	"mips", "nios2", "openrisc", "parisc", "powerpc", "riscv", "s390", "sh", "sparc", "um", "x86", "xtensa"}

// extractArgs are tar's arguments to extract the source tarball, whose
// members are under the directory top, into the current directory,
// without top. An xz tarball of several blocks (Debian's linux-source
// tarballs are) decompresses on every core. File creation, not
// decompression, is most of an extraction: when top is known, what
// kbuild never reads for the target is left out, a fifth of the
// tarball's files. That is Documentation's text (reStructuredText, text and YAML
// files, whose changes a patch may carry: ignoredFile) and, when srcarch
// is known, the C, assembly and device-tree sources of every other
// architecture's arch/ directory, which no object of the target compiles
// (a patch there is refused as code the kernel does not build). Their
// headers stay, which a few drivers include (drivers/char/agp/alpha-agp.c),
// and their Kconfig files, which the kernel's Kconfig reads
// (crypto/Kconfig sources arch/arm/crypto/Kconfig).
func extractArgs(tarball, top, srcarch string) []string {
	args := []string{"-xf", tarball, "--strip-components=1"}
	if top != "" && !strings.ContainsAny(top, "*?[\\") {
		args = append(args, "--anchored", "--wildcards-match-slash")
		for _, ext := range []string{"rst", "txt", "yaml"} {
			args = append(args, "--exclude="+top+"/Documentation/*."+ext)
		}
		if slices.Contains(arches, srcarch) {
			for _, a := range arches {
				if a == srcarch {
					continue
				}
				for _, ext := range []string{"c", "S", "dts", "dtsi"} {
					args = append(args, "--exclude="+top+"/arch/"+a+"/*."+ext)
				}
			}
		}
	}
	if compress := compressArg(tarball); compress != "" {
		args = append([]string{compress}, args...)
	}
	return args
}

// compressArg is tar's option to decompress tarball on every core, or "".
func compressArg(tarball string) string {
	if strings.HasSuffix(tarball, ".xz") {
		if _, err := exec.LookPath("xz"); err == nil {
			return "--use-compress-program=xz -T0"
		}
	}
	return ""
}

// topDir is the first component of the tarball's first member, which
// --strip-components=1 strips, read without reading further ("" when it
// cannot be read: then nothing is left out).
func topDir(ctx context.Context, tarball string) string {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := []string{"-tf", tarball}
	if c := compressArg(tarball); c != "" {
		args = append([]string{c}, args...)
	}
	cmd := exec.CommandContext(ctx, "tar", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return ""
	}
	if err := cmd.Start(); err != nil {
		return ""
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	cancel()
	cmd.Wait() // killed: its status says nothing
	if err != nil {
		return ""
	}
	top, _, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "/")
	return top
}

// srcArch is the arch/ directory of the kernel cfg configures ("" when
// kelp does not know it).
func srcArch(cfg []byte) string {
	if bytes.Contains(cfg, []byte("\nCONFIG_X86=y\n")) {
		return "x86"
	}
	return ""
}

// Resolve fills in Release (default: the running kernel) and checks the
// config and headers given explicitly, so that a missing file is named
// before any tree work. The default config and headers depend on the
// build root of the release; Open finds and checks them.
func (opts Options) Resolve() (Options, error) {
	if opts.Release == "" {
		rel, err := runningRelease()
		if err != nil {
			return opts, err
		}
		opts.Release = rel
	}
	if opts.Config != "" {
		if st, err := os.Stat(opts.Config); err != nil || st.IsDir() {
			return opts, fmt.Errorf("kernel config of %s: %s is not a readable file (give --config)", opts.Release, opts.Config)
		}
	}
	if opts.Headers != "" {
		if _, err := os.Stat(filepath.Join(opts.Headers, "Module.symvers")); err != nil {
			return opts, fmt.Errorf("kernel headers of %s: %s has no Module.symvers (install linux-headers-%s, or give --headers)", opts.Release, opts.Headers, opts.Release)
		}
	}
	return opts, nil
}

// DefaultCacheDir is $XDG_CACHE_HOME/kelp/trees (~/.cache/kelp/trees).
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(base, "kelp", "trees"), nil
}

// prepare configures dir with cfg and runs modules_prepare. objtool,
// when set, is the target's own objtool, which the tree takes in place of
// building one from its source (half of modules_prepare's work).
func prepare(ctx context.Context, r *buildroot.Root, dir string, cfg []byte, jobs int, objtool string) error {
	if err := os.WriteFile(filepath.Join(dir, ".config"), cfg, 0o644); err != nil {
		return err
	}
	// Distribution configs name certificate files that exist only in
	// their packaging trees; they play no part in compiling objects.
	for _, opt := range []string{"SYSTEM_TRUSTED_KEYS", "SYSTEM_REVOCATION_KEYS"} {
		if err := run(ctx, r, dir, "scripts/config", "--set-str", opt, ""); err != nil {
			return err
		}
	}
	if err := run(ctx, r, dir, "make", "-s", "-j"+strconv.Itoa(jobs), "olddefconfig"); err != nil {
		return fmt.Errorf("prepare kernel tree: %w", err)
	}
	// modules_prepare builds resolve_btfids (and libbpf for it) when
	// the config has BTF: about half of its work, for a tool that only
	// adds BTF to a vmlinux or to modules linked beside one, which a
	// source tree never is (modules link in the kernel's kbuild
	// directory). -o skips it, and objtool when the target's is taken;
	// -o is not passed to sub-makes, so the goal is alone (no
	// mixed-target recursion) and --no-print-directory keeps Linux
	// 6.12's Makefile from running itself again.
	kept := keptBTF
	if objtool != "" {
		kept = KeptTools
	}
	args := append([]string{"-s", "-j" + strconv.Itoa(jobs)}, kept...)
	if err := run(ctx, r, dir, "make", append(args, "modules_prepare")...); err != nil {
		return fmt.Errorf("prepare kernel tree: %w", err)
	}
	if objtool != "" {
		dst := filepath.Join(dir, "tools", "objtool", "objtool")
		if err := copyFile(objtool, dst); err != nil {
			return fmt.Errorf("prepare kernel tree: objtool: %w", err)
		}
		if err := os.Chmod(dst, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// KeptTools are make's arguments that keep a make of the top Makefile in
// a prepared tree (kbuild's own build of objects, which tests compare
// kelp's with) from building the tools prepare leaves out or takes from
// the target: resolve_btfids and objtool. make does not pass -o to the
// makes it runs, and without --no-print-directory Linux 6.12's Makefile
// runs itself again.
var KeptTools = append(slices.Clip(keptBTF), "-o", "tools/objtool")

// keptBTF keeps resolve_btfids alone from being built.
var keptBTF = []string{"--no-print-directory", "-o", "tools/bpf/resolve_btfids"}

// targetObjtool is the objtool of the target's kbuild directory headers
// (Debian's linux-kbuild package, built from the kernel's source with it),
// or "" when it has none. kbuild runs it on each object the tree compiles:
// it is the one the target's own modules were processed with. Where the
// package ships objtool for several architectures (Debian 13's), the
// objtool in headers only runs objtool.real-<SRCARCH> beside it, with
// SRCARCH from kbuild's environment: the tree takes that one.
func targetObjtool(headers, srcarch string) string {
	p := filepath.Join(headers, "tools", "objtool", "objtool")
	if srcarch != "" {
		if real := p + ".real-" + srcarch; runs(real) {
			return real
		}
	}
	if !runs(p) {
		return ""
	}
	return p
}

// runs tells whether p is an executable file.
func runs(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// preparedCopy returns a prepared copy of the user's tree src in cache:
// kelp never writes into a tree it was given. The copy is named after the
// tree's path and its content (every file's path, size and modification
// time) and the config, so an edit to the tree makes a new copy, which
// replaces the older copies of the same tree.
func preparedCopy(ctx context.Context, r *buildroot.Root, src, cache, release string, cfg []byte, jobs int, step func(string)) (string, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "Makefile")); err != nil {
		return "", fmt.Errorf("source tree %s: %w", src, err)
	}
	content, err := treeContent(abs)
	if err != nil {
		return "", fmt.Errorf("source tree %s: %w", src, err)
	}
	prefix := filepath.Join(cache, release+"-src-"+Digest(abs)[:12])
	dir, err := Cached(prefix+"-"+Digest(content, string(cfg))[:16], func(dir string) error {
		step("copying " + abs + " into " + dir)
		if err := run(ctx, nil, "", "cp", "-a", "--reflink=auto", abs+"/.", dir); err != nil {
			return fmt.Errorf("copy %s: %w", abs, err)
		}
		step("preparing the copy (make olddefconfig modules_prepare)")
		return prepare(ctx, r, dir, cfg, jobs, "")
	})
	if err != nil {
		return "", err
	}
	old, _ := filepath.Glob(prefix + "-*")
	for _, o := range old {
		if o != dir && o != dir+".lock" {
			sys.RemoveAll(o)
		}
	}
	return dir, nil
}

// treeContent describes a source tree by every file's path, size, mode
// and modification time (not its bytes: a kernel tree is large, and an
// edit changes the time).
func treeContent(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%v\x00%d\n", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkCompiler compares gcc's version line with CONFIG_CC_VERSION_TEXT,
// ignoring the program name (gcc-12 and gcc are the same compiler).
func checkCompiler(ctx context.Context, r *buildroot.Root, cfg []byte, skip bool) error {
	want := configString(cfg, "CONFIG_CC_VERSION_TEXT")
	if want == "" || skip {
		return nil
	}
	out, err := r.Command(ctx, "/", nil, "gcc", "--version").Output()
	if err != nil {
		return fmt.Errorf("gcc --version: %w (install gcc)", err)
	}
	have, _, _ := strings.Cut(string(out), "\n")
	if versionPart(have) != versionPart(want) {
		return &CompilerMismatchError{Kernel: want, Local: have}
	}
	return nil
}

func versionPart(s string) string {
	_, v, _ := strings.Cut(strings.TrimSpace(s), " ")
	return v
}

// configString returns the value of option in a .config, unquoted.
func configString(cfg []byte, option string) string {
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), option+"="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

func runningRelease() (string, error) {
	rel, err := sys.Running.Release()
	if err != nil {
		return "", fmt.Errorf("running kernel release: %w (give --kernel)", err)
	}
	return rel, nil
}

// run executes a command in dir; on failure the error carries the tail of
// its output.
func run(ctx context.Context, r *buildroot.Root, dir string, name string, args ...string) error {
	cmd := r.Command(ctx, dir, nil, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &RunError{Name: name, Err: err, Output: out.String()}
	}
	return nil
}

// RunError is a command that failed, with its output.
type RunError struct {
	Name   string
	Err    error
	Output string
}

func (e *RunError) Error() string {
	return fmt.Sprintf("%s: %v\n%s", e.Name, e.Err, tail(e.Output, 30))
}

func (e *RunError) Unwrap() error { return e.Err }

var errNotDebian = errors.New("not a Debian system (dpkg-query not found)")
