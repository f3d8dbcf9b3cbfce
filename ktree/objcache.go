package ktree

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/internal/sys"
)

// The original object of a tree, config and object never changes, so it
// is compiled once (kbuild's command, run by kelp outside the tree) and
// kept in a cache shared by every build. An entry is found by the digest
// of the tree, its config, the compiler, objtool and the command line,
// and is used only while every file the compiler read (its dependency
// list) still has the content it had.

// cacheVersion names the layout of a cache entry.
const cacheVersion = "orig-v3"

// entry is what a cache entry records besides the object.
type entry struct {
	// Deps are the files the compiler read, relative to the tree or
	// absolute, with the sha256 of their content.
	Deps [][2]string `json:"deps"`
	// CRCs are the MODVERSIONS CRCs of the symbols the object exports.
	CRCs map[string]uint32 `json:"crcs"`
	// Stats are, for each of Deps, its inode's state (statSig) when it
	// was hashed, or "" when that state may not tell a later change (a
	// file changed in the seconds before): a dependency whose inode is
	// still in that state is not read again.
	Stats []string `json:"stats,omitempty"`
}

// settle is how long ago a file must have last changed for its inode's
// state to vouch for its content: a change within the same tick of the
// file system's clock could otherwise leave size and times as they were.
var settle = 2 * time.Second

// filesHashed counts fileSum's reads (for the tests).
var filesHashed atomic.Int64

// statSig is the state of the inode at p: device, inode number, size,
// modification and change times (every write sets the change time to the
// current time, and no system call sets it back). settled says that it
// last changed more than settle before now. It is "" when the system does
// not say.
func statSig(p string, now time.Time) (sig string, settled bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", false
	}
	dev, ino, ctime, ok := sys.Inode(fi)
	if !ok {
		return "", false
	}
	sig = fmt.Sprintf("%d:%d:%d:%d:%d", dev, ino, fi.Size(), fi.ModTime().UnixNano(), ctime.UnixNano())
	return sig, fi.ModTime().Before(now.Add(-settle)) && ctime.Before(now.Add(-settle))
}

// DefaultObjectCache is $XDG_CACHE_HOME/kelp/objects.
func DefaultObjectCache() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(base, "kelp", "objects"), nil
}

// Original returns the original object obj (compiled from the tree's
// source with kbuild's command, objtool included) and the CRCs of the
// symbols it exports, from the object cache, compiling it on a miss.
// hit tells whether the cache had it.
func (t *Tree) Original(ctx context.Context, obj string) (object string, crcs map[string]uint32, hit bool, err error) {
	object, e, hit, err := t.original(ctx, obj)
	if err != nil {
		return "", nil, false, err
	}
	return object, e.CRCs, hit, nil
}

// OriginalDeps returns the files the compiler read to compile the
// original obj (as it names them: relative to the tree, or absolute),
// compiling it into the object cache on a miss.
func (t *Tree) OriginalDeps(ctx context.Context, obj string) (map[string]bool, error) {
	_, e, _, err := t.original(ctx, obj)
	if err != nil {
		return nil, err
	}
	deps := make(map[string]bool, len(e.Deps))
	for _, d := range e.Deps {
		deps[d[0]] = true
	}
	return deps, nil
}

// entryDir is the object cache entry of obj's original, and the object
// in it.
func (t *Tree) entryDir(ctx context.Context, obj string) (dir, object string, err error) {
	cmd, err := t.Command(obj)
	if err != nil {
		return "", "", err
	}
	key, err := t.originalKey(ctx, cmd, obj)
	if err != nil {
		return "", "", err
	}
	cache := t.ObjectCache
	if cache == "" {
		if cache, err = DefaultObjectCache(); err != nil {
			return "", "", err
		}
	}
	dir = filepath.Join(cache, key)
	return dir, filepath.Join(dir, path.Base(obj)), nil
}

func (t *Tree) original(ctx context.Context, obj string) (object string, e *entry, hit bool, err error) {
	cmd, err := t.Command(obj)
	if err != nil {
		return "", nil, false, err
	}
	dir, object, err := t.entryDir(ctx, obj)
	if err != nil {
		return "", nil, false, err
	}
	cache := filepath.Dir(dir)
	if e, ok := t.valid(dir, object); ok {
		return object, e, true, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", nil, false, err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", nil, false, err
	}
	defer unlock()
	if e, ok := t.valid(dir, object); ok {
		return object, e, true, nil
	}
	// Compiled beside the entry and renamed into place: a build reading
	// an entry never sees it half written.
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if e, err = t.compileOriginal(ctx, cmd, obj, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", nil, false, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", nil, false, err
	}
	return object, e, false, nil
}

// originalKey digests what the object is made from besides the files the
// compiler reads.
func (t *Tree) originalKey(ctx context.Context, cmd, obj string) (string, error) {
	cfg, err := os.ReadFile(filepath.Join(t.Dir, ".config"))
	if err != nil {
		return "", err
	}
	cc, err := t.compilerID(ctx, cmd)
	if err != nil {
		return "", err
	}
	// The tree's own tools the command runs: objtool and gcc plugins
	// (genksyms, for the CRCs, is prepared with them).
	tools := []string{"tools/objtool/objtool", "scripts/genksyms/genksyms"}
	for _, m := range pluginRE.FindAllStringSubmatch(cmd, -1) {
		tools = append(tools, m[1])
	}
	var toolSums string
	for _, tool := range tools {
		sum, err := t.toolSum(tool)
		if err != nil {
			return "", err
		}
		toolSums += tool + "=" + sum + "\n"
	}
	return Digest(cacheVersion, t.Dir, string(cfg), cc, toolSums, cmd, obj), nil
}

// toolSum identifies a tool of the tree by its FileKey (path, size and
// modification time; "" when the tree has none), as compilers are: the
// tree's tools are rebuilt only when the tree is prepared again. Computed
// once per Tree.
func (t *Tree) toolSum(tool string) (string, error) {
	t.ccMu.Lock()
	defer t.ccMu.Unlock()
	if sum, ok := t.tools[tool]; ok {
		return sum, nil
	}
	sum, err := FileKey(t.abs(tool))
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if t.tools == nil {
		t.tools = map[string]string{}
	}
	t.tools[tool] = sum
	return sum, nil
}

var pluginRE = regexp.MustCompile(`-fplugin=(\S+)`)

// compilerID identifies the compiler the command runs (see CompilerID).
func (t *Tree) compilerID(ctx context.Context, cmd string) (string, error) {
	cc, _, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	return CompilerID(ctx, t.Exec, cc)
}

// CompilerID identifies the compiler cc where it runs (on the host when r
// is nil, else in the build root r): the driver, cc1 and the assembler it
// calls (path, size and modification time of each) and its own
// description of itself (version and configuration).
//
// An answer is kept for the life of the process (a compiler does not
// change under one build); the first caller runs the script, the others
// wait for it.
func CompilerID(ctx context.Context, r *buildroot.Root, cc string) (string, error) {
	where := ""
	if r != nil {
		where = r.Dir
	}
	key := where + "\x00" + cc
	v, _ := compilerIDs.LoadOrStore(key, &compilerIDOnce{})
	c := v.(*compilerIDOnce)
	c.once.Do(func() { c.id, c.err = compilerID(ctx, r, cc) })
	if c.err != nil {
		// A failure (a cancelled context among them) is not kept: the
		// next caller asks again.
		compilerIDs.CompareAndDelete(key, c)
	}
	return c.id, c.err
}

// compilerIDs memoises CompilerID per build root and compiler name.
var compilerIDs sync.Map

type compilerIDOnce struct {
	once sync.Once
	id   string
	err  error
}

func compilerID(ctx context.Context, r *buildroot.Root, cc string) (string, error) {
	if r == nil {
		if id, ok := storedCompilerID(cc); ok {
			return id, nil
		}
	}
	const script = `set -e
readlink -f "$(command -v "$1")"
readlink -f "$("$1" -print-prog-name=cc1)"
as=$("$1" -print-prog-name=as)
readlink -f "$(command -v "$as")"
"$1" -v 2>&1`
	out, err := r.Command(ctx, "/", nil, "sh", "-c", script, "sh", cc).Output()
	if err != nil {
		return "", fmt.Errorf("compiler %s: %w", cc, err)
	}
	lines := strings.SplitN(string(out), "\n", 4)
	if len(lines) < 4 {
		return "", fmt.Errorf("compiler %s: %q not understood", cc, out)
	}
	id := lines[3]
	for _, p := range lines[:3] {
		key, err := FileKey(r.HostPath(p))
		if err != nil {
			return "", fmt.Errorf("compiler %s: %w", cc, err)
		}
		id += "\n" + key
	}
	if r == nil {
		storeCompilerID(cc, lines[:3], id)
	}
	return id, nil
}

// A host compiler's identity is kept on disk as well, so that a build
// does not run the compiler four times to learn it. The record holds
// while cc resolves on PATH to the same driver, and the driver, cc1, the
// assembler and the directories gcc looks for its programs in (cc1's and
// its parent, where a new program would change -print-prog-name's
// answer) have the same keys (path, size, modification time). The
// environment that steers the driver's search is part of the record's
// name.
type compilerRecord struct {
	Driver string            // what cc resolved to
	Keys   map[string]string // FileKey of each file and directory
	ID     string
}

// compilerRecordFile names the record of cc in this environment.
func compilerRecordFile(cc string) (string, error) {
	return recordPath("compilers", Digest("compiler-v1", cc, os.Getenv("PATH"), os.Getenv("GCC_EXEC_PREFIX"), os.Getenv("COMPILER_PATH"))+".json")
}

// resolveDriver is where sh's `readlink -f "$(command -v cc)"` leads.
func resolveDriver(cc string) (string, error) {
	p, err := exec.LookPath(cc)
	if err != nil {
		return "", err
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// compilerFiles are the files and directories a record keys: the three
// programs and the directories of cc1.
func compilerFiles(programs []string) []string {
	files := append([]string(nil), programs...)
	if len(programs) > 1 {
		files = append(files, filepath.Dir(programs[1]), filepath.Dir(filepath.Dir(programs[1])))
	}
	return files
}

func storedCompilerID(cc string) (string, bool) {
	file, err := compilerRecordFile(cc)
	if err != nil {
		return "", false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", false
	}
	var rec compilerRecord
	if json.Unmarshal(data, &rec) != nil || rec.ID == "" || len(rec.Keys) == 0 {
		return "", false
	}
	if d, err := resolveDriver(cc); err != nil || d != rec.Driver {
		return "", false
	}
	for f, key := range rec.Keys {
		if k, err := FileKey(f); err != nil || k != key {
			return "", false
		}
	}
	return rec.ID, true
}

// storeCompilerID records the identity the script gave; a record that
// cannot be written is only a slower next build.
func storeCompilerID(cc string, programs []string, id string) {
	file, err := compilerRecordFile(cc)
	if err != nil {
		return
	}
	driver, err := resolveDriver(cc)
	if err != nil || driver != programs[0] {
		return // resolved otherwise than sh did: nothing to check a record by
	}
	rec := compilerRecord{Driver: driver, Keys: map[string]string{}, ID: id}
	for _, f := range compilerFiles(programs) {
		k, err := FileKey(f)
		if err != nil {
			return
		}
		rec.Keys[f] = k
	}
	if data, err := json.Marshal(rec); err == nil {
		keepRecord(file, data)
	}
}

// valid reads the entry in dir and checks that its object is there and
// every dependency has its recorded content.
func (t *Tree) valid(dir, object string) (*entry, bool) {
	if _, err := os.Stat(object); err != nil {
		return nil, false
	}
	data, err := os.ReadFile(filepath.Join(dir, "entry.json"))
	if err != nil {
		return nil, false
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil || len(e.Deps) == 0 {
		return nil, false
	}
	// A dependency whose inode is as it was when it was hashed is as it
	// was; the others are read and hashed again.
	// An entry whose states are missing or stale has them taken again,
	// before the files are read, and rewritten once the contents match.
	var paths, want []string
	now := time.Now()
	stats := make([]string, len(e.Deps))
	for i, d := range e.Deps {
		sig, settled := statSig(t.abs(d[0]), now)
		if len(e.Stats) == len(e.Deps) && e.Stats[i] != "" && sig == e.Stats[i] {
			stats[i] = sig
			continue
		}
		if settled {
			stats[i] = sig
		}
		paths, want = append(paths, d[0]), append(want, d[1])
	}
	sums, errs := t.fileSums(paths, nil)
	for i := range paths {
		if errs[i] != nil || sums[i] != want[i] {
			return nil, false
		}
	}
	if !slices.Equal(stats, e.Stats) {
		e.Stats = stats
		if data, err := json.Marshal(e); err == nil {
			// Kept or not, the entry holds: a later build reads again.
			atomicfile.WriteFile(filepath.Join(dir, "entry.json"), data, 0o644)
		}
	}
	return &e, true
}

// abs is the host's path of a file the compiler named p (relative to the
// tree, or absolute where the compiler runs).
func (t *Tree) abs(p string) string {
	if filepath.IsAbs(p) {
		return t.Exec.HostPath(p)
	}
	return filepath.Join(t.Dir, p)
}

// compileOriginal runs kbuild's command for obj with the object written
// into dir (its assembly piped: viaPipe), then records the dependencies
// and CRCs. The entry is complete when entry.json exists.
func (t *Tree) compileOriginal(ctx context.Context, cmd, obj, dir string) (*entry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	src := strings.TrimSuffix(obj, ".o") + ".c"
	flags, post, _, ksrc, err := compileFlags(cmd, obj, src)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, path.Base(obj))
	dep := out + ".d"
	flags = mmdRE.ReplaceAllString(flags, "-Wp,-MMD,"+shellQuote(dep))
	script := flags + viaPipe + " -c -o " + shellQuote(out) + " " + ksrc
	if post != "" {
		script += " && " + post + shellQuote(out)
	}
	if err := run(ctx, t.Exec, t.Dir, "sh", "-c", script); err != nil {
		return nil, compileError("original", obj, err)
	}
	deps, err := readDeps(dep)
	if err != nil {
		return nil, fmt.Errorf("compile %s: dependencies: %w", obj, err)
	}
	e := &entry{}
	// genksyms reads a copy starting with the #line directive the
	// patched copy starts with, so the two CRCs differ only by the patch.
	work := filepath.Join(dir, "src")
	copyPath := filepath.Join(work, path.Base(src))
	if err := copyFile(filepath.Join(t.Dir, src), copyPath); err != nil {
		return nil, err
	}
	if err := prependLine(copyPath, ksrc); err != nil {
		return nil, err
	}
	if e.CRCs, err = t.crcs(ctx, cmd, obj, src, copyPath, "", "", out); err != nil {
		return nil, err
	}
	// The CRCs depend on what the preprocessor read for genksyms too.
	if more, err := readDeps(out + ".symvers.d"); err == nil {
		deps = append(deps, more...)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("genksyms %s: dependencies: %w", obj, err)
	}
	seen := map[string]bool{copyPath: true}
	var paths []string
	for _, d := range deps {
		if !seen[d] {
			seen[d] = true
			paths = append(paths, d)
		}
	}
	// Each inode's state is taken before its content is read: a change
	// after it changes the state.
	now := time.Now()
	for _, d := range paths {
		sig, settled := statSig(t.abs(d), now)
		if !settled {
			sig = ""
		}
		e.Stats = append(e.Stats, sig)
	}
	sums, errs := t.fileSums(paths, e.Stats)
	for i, d := range paths {
		if errs[i] != nil {
			return nil, fmt.Errorf("compile %s: dependency %s: %w", obj, d, errs[i])
		}
		e.Deps = append(e.Deps, [2]string{d, sums[i]})
	}
	os.RemoveAll(work)
	os.Remove(out + ".symvers.d")
	data, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	// The object is durable before the entry that makes it valid is.
	if err := syncFile(out); err != nil {
		return nil, err
	}
	return e, atomicfile.WriteFile(filepath.Join(dir, "entry.json"), data, 0o644)
}

// fileSums is fileSum of each of paths (named as the compiler names
// them), a few at once: an object's dependencies are hundreds of headers.
// sigs, when given, are the paths' settled inode states (statSig, "" for
// none) taken before: a file hashed in this tree's lifetime (prehash)
// with its inode in that state is not read again.
func (t *Tree) fileSums(paths, sigs []string) ([]string, []error) {
	sums := make([]string, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(paths); i += workers {
				if sigs != nil && sigs[i] != "" {
					if sum, ok := t.hashed.Load(hashedKey{t.abs(paths[i]), sigs[i]}); ok {
						sums[i] = sum.(string)
						continue
					}
				}
				sums[i], errs[i] = fileSum(t.abs(paths[i]))
			}
		})
	}
	wg.Wait()
	return sums, errs
}

// hashedKey is a file (its host path) and its settled inode state when
// its content was hashed.
type hashedKey struct{ path, sig string }

// prehash hashes paths, the files the compiler read for an object, into
// the tree's memory of hashed files, each under the settled inode state
// taken before it is read; a file not settled is left out. The
// original object's dependencies, recorded when its compile ends, are
// then found hashed: prehash reads them while that compile runs, from
// the patched copy's compile, which ends first (no debug information).
func (t *Tree) prehash(paths []string) {
	now := time.Now()
	for _, p := range paths {
		abs := t.abs(p)
		sig, settled := statSig(abs, now)
		if !settled {
			continue
		}
		if _, ok := t.hashed.Load(hashedKey{abs, sig}); ok {
			continue
		}
		if sum, err := fileSum(abs); err == nil {
			t.hashed.Store(hashedKey{abs, sig}, sum)
		}
	}
}

// readDeps reads the files a gcc dependency file (-MMD) names.
func readDeps(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	s := strings.ReplaceAll(string(data), "\\\n", " ")
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		_, list, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(list) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no file", p)
	}
	return out, nil
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func fileSum(p string) (string, error) {
	filesHashed.Add(1)
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
