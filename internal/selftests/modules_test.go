package selftests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

// kernelLine is one kernel line's livepatch selftests: the Debian kernel
// they run on, where its source keeps the test modules and scripts, and
// the scenarios re-creating the scripts' cases through kelp.
type kernelLine struct {
	Name   string // "6.1", "6.12"
	Kernel func(testing.TB) *testenv.Kernel
	// ModuleDir holds the test modules' sources in the kernel tree.
	ModuleDir string
	Modules   []string
	Scripts   []string
	Scenarios []scenario
	// Programs are user programs of the scripts' directory (name.c)
	// the scenarios run, built static and placed next to the modules.
	Programs []string
}

// selftestDir holds the livepatch selftest scripts in a kernel tree.
const selftestDir = "tools/testing/selftests/livepatch"

// testModules are the kernel's livepatch test modules (lib/livepatch).
var testModules = []string{
	"test_klp_livepatch",
	"test_klp_atomic_replace",
	"test_klp_callbacks_demo",
	"test_klp_callbacks_demo2",
	"test_klp_callbacks_mod",
	"test_klp_callbacks_busy",
	"test_klp_shadow_vars",
	"test_klp_state",
	"test_klp_state2",
	"test_klp_state3",
}

// livepatchModules are the test modules that are livepatches.
var livepatchModules = map[string]bool{
	"test_klp_livepatch":       true,
	"test_klp_atomic_replace":  true,
	"test_klp_callbacks_demo":  true,
	"test_klp_callbacks_demo2": true,
	"test_klp_state":           true,
	"test_klp_state2":          true,
	"test_klp_state3":          true,
	"test_klp_syscall":         true,
}

// linux61 is Debian 12's kernel: its selftests load the modules
// CONFIG_TEST_LIVEPATCH builds from lib/livepatch.
var linux61 = &kernelLine{
	Name:      "6.1",
	Kernel:    testenv.RequireKernel,
	ModuleDir: "lib/livepatch",
	Modules:   testModules,
	Scripts: []string{
		"test-livepatch.sh", "test-callbacks.sh", "test-shadow-vars.sh",
		"test-state.sh", "test-ftrace.sh", "test-sysfs.sh",
	},
	Scenarios: scenarios,
}

// linux612 is Debian 13's kernel: its selftests build their modules
// themselves (test_modules, against the running kernel's headers), add
// test_klp_syscall and the getpid program test-syscall.sh runs, and check
// the patches' replace attribute.
var linux612 = &kernelLine{
	Name: "6.12",
	Kernel: func(t testing.TB) *testenv.Kernel {
		return testenv.RequireKernelOf(t, func() (*testenv.Kernel, error) { return testenv.Debian13Kernel("amd64") })
	},
	ModuleDir: selftestDir + "/test_modules",
	Modules:   append(append([]string(nil), testModules...), "test_klp_syscall"),
	Scripts: []string{
		"test-livepatch.sh", "test-callbacks.sh", "test-shadow-vars.sh",
		"test-state.sh", "test-ftrace.sh", "test-sysfs.sh", "test-syscall.sh",
	},
	Scenarios: scenarios612(),
	Programs:  []string{"test_klp-call_getpid"},
}

// guestKO is where the test modules are placed in the guest.
const guestKO = "/root/ko"

type builtModules struct {
	kernel *testenv.Kernel
	tree   string
	ko     map[string]string // module name → host .ko path
	progs  map[string]string // program name → host binary
}

type buildResult struct {
	once sync.Once
	b    *builtModules
	err  error
}

var (
	buildMu sync.Mutex
	builds  = map[*kernelLine]*buildResult{}
)

// modules builds the 6.1 test modules (see modulesOf).
func modules(t testing.TB) *builtModules { return modulesOf(t, linux61) }

// modulesOf builds a kernel line's test modules once per test process
// (and, through the test cache, once per kernel), each with kbuild
// against the kernel's headers (M=), two compilers at a time.
func modulesOf(t testing.TB, kl *kernelLine) *builtModules {
	t.Helper()
	k := kl.Kernel(t)
	buildMu.Lock()
	r := builds[kl]
	if r == nil {
		r = &buildResult{}
		builds[kl] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.b, r.err = buildModules(context.Background(), k, kl) })
	if r.err != nil {
		t.Fatalf("build %s test modules: %v", kl.Name, r.err)
	}
	return r.b
}

func buildModules(ctx context.Context, k *testenv.Kernel, kl *kernelLine) (*builtModules, error) {
	tree, err := k.SourceTree(ctx)
	if err != nil {
		return nil, fmt.Errorf("kernel source: %w", err)
	}
	b := &builtModules{kernel: k, tree: tree, ko: map[string]string{}, progs: map[string]string{}}
	srcDir := filepath.Join(tree, kl.ModuleDir)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	errs := make([]error, len(kl.Modules))
	for i, name := range kl.Modules {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			src, err := os.ReadFile(filepath.Join(srcDir, name+".c"))
			if err != nil {
				errs[i] = err
				return
			}
			files := map[string][]byte{name + ".c": src}
			// test_klp_state3.c is test_klp_state2.c with other
			// version numbers: it #includes it. Give the included file
			// a name kbuild does not compile on its own.
			if inc := []byte(`#include "test_klp_state2.c"`); bytes.Contains(src, inc) {
				state2, err := os.ReadFile(filepath.Join(srcDir, "test_klp_state2.c"))
				if err != nil {
					errs[i] = err
					return
				}
				files[name+".c"] = bytes.Replace(src, inc, []byte(`#include "test_klp_state2.inc"`), 1)
				files["test_klp_state2.inc"] = state2
			}
			ko, err := k.BuildModule(ctx, testenv.ModuleSource{Name: name, Files: files})
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			b.ko[name] = ko
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The kernel's livepatch sample patches the same function as
	// test_klp_livepatch (cmdline_proc_show): two stacked patches.
	if src, err := os.ReadFile(filepath.Join(tree, "samples/livepatch/livepatch-sample.c")); err != nil {
		errs = append(errs, err)
	} else if ko, err := k.BuildModule(ctx, testenv.ModuleSource{Name: "livepatch-sample", Files: map[string][]byte{"livepatch-sample.c": src}}); err != nil {
		errs = append(errs, err)
	} else {
		b.ko["livepatch-sample"] = ko
	}
	for _, name := range kl.Programs {
		if src, err := os.ReadFile(filepath.Join(tree, selftestDir, name+".c")); err != nil {
			errs = append(errs, err)
		} else if bin, err := k.BuildProgram(ctx, name, src); err != nil {
			errs = append(errs, err)
		} else {
			b.progs[name] = bin
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// files places every test module and program in the guest under guestKO.
func (b *builtModules) files() []vmtest.File {
	var fs []vmtest.File
	for name, ko := range b.ko {
		fs = append(fs, vmtest.File{Path: guestKO + "/" + name + ".ko", Host: ko})
	}
	for name, bin := range b.progs {
		fs = append(fs, vmtest.File{Path: guestKO + "/" + name, Host: bin, Mode: 0o755})
	}
	return fs
}
