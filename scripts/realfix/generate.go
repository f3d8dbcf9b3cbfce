package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// MaxChanged is the largest fix the corpus takes: added plus removed
// lines of the file's diff.
const MaxChanged = 40

// opener opens one kernel source tree as a tar stream.
type opener func() (io.ReadCloser, error)

// xzTar opens a linux-source tarball (.tar.xz) through xz.
func xzTar(path string) opener {
	return func() (io.ReadCloser, error) {
		cmd := exec.Command("xz", "-dc", path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return &cmdReader{out, cmd}, nil
	}
}

type cmdReader struct {
	io.ReadCloser
	cmd *exec.Cmd
}

func (r *cmdReader) Close() error {
	// Drain so xz is not killed by a broken pipe mid-way.
	io.Copy(io.Discard, r.ReadCloser)
	r.ReadCloser.Close()
	return r.cmd.Wait()
}

// treePath strips the tarball's top directory (linux-source-6.1/).
func treePath(name string) string {
	name = strings.TrimPrefix(name, "./")
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return ""
}

// amd64Code tells whether path is kernel code an amd64 kernel may
// compile: not another architecture's, not the userspace tools, scripts,
// samples or documentation. Whether the object is built at all is for
// kbuild to say under the target's config.
func amd64Code(path string) bool {
	top, rest, _ := strings.Cut(path, "/")
	switch top {
	case "tools", "scripts", "samples", "Documentation", "usr":
		return false
	case "arch":
		return strings.HasPrefix(rest, "x86/")
	}
	return true
}

// walkC calls fn with the tree path and contents of every regular .c
// file of the tar stream for which want is true.
func walkC(open opener, want func(path string) bool, fn func(path string, data []byte)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rc.Close()
			return err
		}
		p := treePath(h.Name)
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(p, ".c") || !want(p) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			rc.Close()
			return err
		}
		fn(p, data)
	}
	return rc.Close()
}

// Selection is what the generator found between the two trees.
type Selection struct {
	Patches   []Patch  // changed .c files of amd64 code with 1..MaxChanged changed lines
	TooLarge  []string // changed .c files of amd64 code with more changed lines
	OtherArch []string // changed .c files that are not amd64 kernel code
	Added     []string // .c files only in the newer tree
	Removed   []string // .c files only in the older tree
}

// Patch is one generated fix: a -p1 diff of one file.
type Patch struct {
	File    string // tree path, e.g. net/core/dev.c
	Changed int    // added + removed lines
	Text    string // header and diff
}

// Select compares the .c files of two trees and makes one patch per
// changed file, sorted by path. oldVer and newVer name the trees in each
// patch's header.
func Select(oldTree, newTree opener, oldVer, newVer string) (*Selection, error) {
	all := func(string) bool { return true }
	newSum := map[string][32]byte{}
	if err := walkC(newTree, all, func(p string, data []byte) { newSum[p] = sha256.Sum256(data) }); err != nil {
		return nil, fmt.Errorf("%s: %w", newVer, err)
	}
	sel := &Selection{}
	oldData := map[string][]byte{}
	seen := map[string]bool{}
	err := walkC(oldTree, all, func(p string, data []byte) {
		seen[p] = true
		sum, ok := newSum[p]
		switch {
		case !ok:
			sel.Removed = append(sel.Removed, p)
		case sum != sha256.Sum256(data):
			oldData[p] = data
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", oldVer, err)
	}
	for p := range newSum {
		if !seen[p] {
			sel.Added = append(sel.Added, p)
		}
	}
	newData := map[string][]byte{}
	err = walkC(newTree, func(p string) bool { return oldData[p] != nil }, func(p string, data []byte) { newData[p] = data })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", newVer, err)
	}
	paths := make([]string, 0, len(oldData))
	for p := range oldData {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !amd64Code(p) {
			sel.OtherArch = append(sel.OtherArch, p)
			continue
		}
		diff, n, err := unifiedDiff(p, oldData[p], newData[p])
		if err != nil {
			return nil, err
		}
		if n == 0 || n > MaxChanged {
			sel.TooLarge = append(sel.TooLarge, p)
			continue
		}
		sel.Patches = append(sel.Patches, Patch{File: p, Changed: n, Text: header(p, oldVer, newVer, n) + diff})
	}
	sort.Strings(sel.Added)
	sort.Strings(sel.Removed)
	return sel, nil
}

// header says where a generated patch comes from (a DEP-3 description,
// which kelp build carries into the module).
func header(path, oldVer, newVer string, n int) string {
	return fmt.Sprintf("Description: %s as Debian's linux-source-6.1 %s has it, over %s\n"+
		" %d changed lines: the whole difference of this file between the two\n"+
		" Debian versions, made by scripts/realfix.\n\n", path, newVer, oldVer, n)
}

// unifiedDiff is diff -u of one file's two versions, as a -p1 patch,
// and its number of added plus removed lines.
func unifiedDiff(path string, old, new []byte) (string, int, error) {
	dir, err := os.MkdirTemp("", "realfix-diff")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(dir)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, old, 0o644); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(b, new, 0o644); err != nil {
		return "", 0, err
	}
	var out bytes.Buffer
	cmd := exec.Command("diff", "-u", "--label", "a/"+path, "--label", "b/"+path, a, b)
	cmd.Stdout = &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return "", 0, fmt.Errorf("diff %s: %w", path, err)
	}
	n := 0
	for i, l := range strings.Split(out.String(), "\n") {
		if i < 2 {
			continue // the ---/+++ lines
		}
		if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
			n++
		}
	}
	return out.String(), n, nil
}

// patchFileName is the file a patch of path is written to.
func patchFileName(path string) string {
	return strings.NewReplacer("/", "_", ".", "_").Replace(strings.TrimSuffix(path, ".c")) + ".patch"
}

// moduleName is the livepatch module name of the i-th patch: short
// (the kernel allows 55 characters) and unique.
func moduleName(i int, path string) string {
	// Module names are lower case (net/netfilter/xt_NFQUEUE.c).
	base := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(strings.TrimSuffix(filepath.Base(path), ".c")))
	name := fmt.Sprintf("rf%03d_%s", i, base)
	if len(name) > 40 {
		name = name[:40]
	}
	return name
}
