package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kelp-project/kelp/ksym"
)

// KernelResult is one kernel's outcome in a build for several kernels:
// its result (nil when the build stopped before it had one) and its error.
type KernelResult struct {
	Kernel string
	Result *Result
	Err    error
}

// BuildKernels builds opts.Patches for each of kernels, one module per
// kernel in OutDir/<kernel>/, one kernel after the other, each with its
// own source tree, config, headers and symbols. opts.Tree.Release,
// opts.Symbols and opts.OutDir are set per kernel; the symbols of each
// come from dumps (PickSymbols). A kernel's failure is its own: the
// others are built all the same. Progress events carry the kernel in
// their message.
func BuildKernels(ctx context.Context, opts Options, kernels []string, dumps []string) []KernelResult {
	picked, errs := PickSymbols(kernels, dumps)
	out := opts.OutDir
	if out == "" {
		out = "."
	}
	var results []KernelResult
	for _, k := range kernels {
		r := KernelResult{Kernel: k}
		if err := ctx.Err(); err != nil {
			r.Err = err
			results = append(results, r)
			continue
		}
		if err := errs[k]; err != nil {
			r.Err = err
			results = append(results, r)
			continue
		}
		o := opts
		o.Tree.Release = k
		o.Symbols = picked[k]
		o.OutDir = filepath.Join(out, k)
		if opts.Progress != nil {
			o.Progress = func(e Event) {
				e.Message = k + ": " + e.Message
				opts.Progress(e)
			}
		}
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			r.Err = err
			results = append(results, r)
			continue
		}
		r.Result, r.Err = Build(ctx, o)
		if r.Err != nil {
			// Nothing half-made is left in the kernel's directory.
			os.Remove(o.OutDir)
		}
		results = append(results, r)
	}
	return results
}

// ErrDumpKernel is a symbols dump that cannot be matched to a kernel.
var ErrDumpKernel = errors.New("symbols dump")

// PickSymbols matches symbol dumps to kernels by the kernel release
// each dump written by kelp symbols names in its header. A dump without
// that header, two dumps of one kernel, or a dump of a kernel that is
// not a target is an error of the whole set (err[""], wrapping
// ErrDumpKernel); a kernel with no dump gets "" (the running kernel's
// /proc/kallsyms, or Build's error naming --symbols).
func PickSymbols(kernels, dumps []string) (map[string]string, map[string]error) {
	picked := map[string]string{}
	errs := map[string]error{}
	want := map[string]bool{}
	for _, k := range kernels {
		want[k] = true
	}
	fail := func(err error) (map[string]string, map[string]error) {
		for _, k := range kernels {
			errs[k] = err
		}
		errs[""] = err
		return nil, errs
	}
	for _, d := range dumps {
		rel, err := dumpRelease(d)
		if err != nil {
			return fail(err)
		}
		if !want[rel] {
			return fail(fmt.Errorf("%w %s is of kernel %s, which is not among the targets (%s)", ErrDumpKernel, d, rel, strings.Join(kernels, ", ")))
		}
		if prev, dup := picked[rel]; dup {
			return fail(fmt.Errorf("%w: %s and %s are both of kernel %s: give one", ErrDumpKernel, prev, d, rel))
		}
		picked[rel] = d
	}
	return picked, errs
}

// readDumpHeader reads the header of the symbols file at path (see
// ksym.ReadDumpHeader; ok is false for a file without one).
func readDumpHeader(path string) (h ksym.DumpHeader, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return h, false, err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	return ksym.ReadDumpHeader(head[:n])
}

// dumpRelease reads the kernel release a kelp symbols dump names.
func dumpRelease(path string) (string, error) {
	h, ok, err := readDumpHeader(path)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "", fmt.Errorf("%w: %v", ErrDumpKernel, err)
	}
	if err != nil {
		return "", fmt.Errorf("%w %s: %v", ErrDumpKernel, path, err)
	}
	if !ok {
		return "", fmt.Errorf("%w %s names no kernel (no \"# kelp symbols: release=...\" first line): with several kernels, take each kernel's dump on it with kelp symbols", ErrDumpKernel, path)
	}
	return h.Release, nil
}

// DumpsFor expands the --symbols arguments for kernels: a file is kept as
// given (PickSymbols checks it); a directory stands for the dumps in it
// (regular files, in name order), of which those of other kernels than
// kernels are left out, so one directory can hold the whole fleet's dumps.
// A file in the directory that names no kernel is an error.
func DumpsFor(kernels, args []string) ([]string, error) {
	want := map[string]bool{}
	for _, k := range kernels {
		want[k] = true
	}
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDumpKernel, err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(a, e.Name())
			rel, err := dumpRelease(p)
			if err != nil {
				return nil, err
			}
			if want[rel] {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// ReadKernelList reads a file of kernel releases, one per line; blank
// lines and # comments are skipped, and duplicates are an error.
func ReadKernelList(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel list: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t/") {
			return nil, fmt.Errorf("kernel list %s:%d: %q is not a kernel release", path, i+1, line)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kernel list %s names no kernel", path)
	}
	return out, nil
}

// DistinctKernels returns kernels without repeats, in their first order,
// or an error naming a repeated one.
func DistinctKernels(kernels []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, k := range kernels {
		if seen[k] {
			return nil, fmt.Errorf("kernel %s is given twice", k)
		}
		seen[k] = true
		out = append(out, k)
	}
	return out, nil
}

// Failed lists the kernels whose build failed, sorted.
func Failed(results []KernelResult) []string {
	var out []string
	for _, r := range results {
		if r.Err != nil {
			out = append(out, r.Kernel)
		}
	}
	sort.Strings(out)
	return out
}
