package testenv

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kelp-project/kelp/buildroot"

	"github.com/kelp-project/kelp/ktree"
)

// SourceTree returns the kernel source from k.SourceTar, extracted into the
// test cache and prepared for building objects with k's configuration
// (make olddefconfig modules_prepare, by ktree). It is done once per
// tarball and config; later calls return at once.
func (k *Kernel) SourceTree(ctx context.Context) (string, error) {
	t, err := k.Tree(ctx)
	if err != nil {
		return "", err
	}
	return t.Dir, nil
}

// Tree returns k's prepared source tree (see SourceTree) as a ktree.Tree.
func (k *Kernel) Tree(ctx context.Context) (*ktree.Tree, error) {
	opts, err := k.TreeOptions()
	if err != nil {
		return nil, err
	}
	return ktree.Open(ctx, opts)
}

// TreeOptions are the ktree options that name k's tree in the test cache,
// for code that opens it itself (kelp build in tests).
func (k *Kernel) TreeOptions() (ktree.Options, error) {
	tarKey, err := FileKey(k.SourceTar)
	if err != nil {
		return ktree.Options{}, err
	}
	cfgKey, err := FileKey(k.Config)
	if err != nil {
		return ktree.Options{}, err
	}
	cache, err := CacheDir()
	if err != nil {
		return ktree.Options{}, err
	}
	return ktree.Options{
		Release:   k.Release,
		SourceTar: k.SourceTar,
		Config:    k.Config,
		Headers:   k.Headers,
		Dir:       filepath.Join(cache, "trees", k.Release+"-"+Digest(tarKey, cfgKey, ktree.TreeLayout)),
		// The tests build with whatever gcc the machine has; the objects
		// are compared with each other, not with the shipped kernel.
		SkipCompilerCheck: true,
	}, nil
}

// run executes a command in dir; on failure the error carries the tail of
// its output.
func run(ctx context.Context, dir string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, tail(out.String(), 30))
	}
	return nil
}

// ModuleSource is one out-of-tree kernel module to build: its C files by
// name. The Kbuild file is generated (obj-m := <Name>.o built from Files).
type ModuleSource struct {
	Name  string            // module name, e.g. livepatch-sample
	Files map[string][]byte // file name → contents
}

// BuildModule compiles an out-of-tree module against k's headers and
// returns the path of the .ko. Results are cached by content.
func (k *Kernel) BuildModule(ctx context.Context, m ModuleSource) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	hdrKey, err := FileKey(filepath.Join(k.Headers, "Module.symvers"))
	if err != nil {
		return "", &ErrMissing{What: "Module.symvers in " + k.Headers, Package: "linux-headers-" + k.Release}
	}
	parts := []string{k.Release, hdrKey, m.Name}
	names := slices.Sorted(maps.Keys(m.Files))
	for _, n := range names {
		parts = append(parts, n, string(m.Files[n]))
	}
	dir := filepath.Join(cache, "modules", m.Name+"-"+Digest(parts...))
	_, err = Cached(dir, func(tmp string) error {
		var objs []string
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(tmp, n), m.Files[n], 0o644); err != nil {
				return err
			}
			if filepath.Ext(n) == ".c" {
				objs = append(objs, n[:len(n)-2]+".o")
			}
		}
		kbuild := "obj-m := " + m.Name + ".o\n"
		if len(objs) != 1 || objs[0] != m.Name+".o" {
			kbuild += m.Name + "-y := " + join(objs) + "\n"
		}
		if err := os.WriteFile(filepath.Join(tmp, "Kbuild"), []byte(kbuild), 0o644); err != nil {
			return err
		}
		if r := k.root(cache); r != nil {
			if _, err := r.Run(ctx, tmp, "make", "-C", r.Path(k.Headers), "M="+tmp, "modules"); err != nil {
				return fmt.Errorf("build module %s in %s: %w", m.Name, r.Dir, err)
			}
			return nil
		}
		if err := run(ctx, tmp, "make", "-C", k.Headers, "M="+tmp, "modules"); err != nil {
			return fmt.Errorf("build module %s: %w", m.Name, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, m.Name+".ko"), nil
}

// root is k's build root with the test cache bound into it, nil when k's
// modules are built on the host.
func (k *Kernel) root(cache string) *rootCmd {
	if k.BuildRoot == "" {
		return nil
	}
	suite, _ := buildroot.SuiteOf(k.Release)
	r := &buildroot.Root{Dir: k.BuildRoot, Suite: suite}
	r.Bind(cache)
	return &rootCmd{r}
}

// rootCmd runs commands in a build root, naming the root's files by the
// paths they have inside it.
type rootCmd struct{ *buildroot.Root }

// Path is the path inside the root of the host path p under r.Dir.
func (r *rootCmd) Path(p string) string {
	if rel, err := filepath.Rel(r.Dir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return p
}

// BuildProgram compiles a user-space C program statically (the guests
// have no C library) with the compiler of k's Debian release, the build
// root's or the host's, and returns the binary's path. Results are
// cached by content.
func (k *Kernel) BuildProgram(ctx context.Context, name string, src []byte) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "programs", name+"-"+Digest(k.Release, k.BuildRoot, string(src)))
	_, err = Cached(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, name+".c"), src, 0o644); err != nil {
			return err
		}
		args := []string{"-O2", "-Wall", "-static", "-o", name, name + ".c"}
		if r := k.root(cache); r != nil {
			if _, err := r.Run(ctx, tmp, "gcc", args...); err != nil {
				return fmt.Errorf("build %s in %s: %w", name, r.Dir, err)
			}
			return nil
		}
		return run(ctx, tmp, "gcc", args...)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// SampleLivepatch builds the kernel's own samples/livepatch/livepatch-sample.c
// (it makes /proc/cmdline read "this has been live patched") from the
// source tree against k's headers and returns the .ko path.
func (k *Kernel) SampleLivepatch(ctx context.Context) (string, error) {
	tree, err := k.SourceTree(ctx)
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(filepath.Join(tree, "samples/livepatch/livepatch-sample.c"))
	if err != nil {
		return "", err
	}
	return k.BuildModule(ctx, ModuleSource{Name: "livepatch-sample", Files: map[string][]byte{"livepatch-sample.c": src}})
}
