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

// livepatchModules are those of testModules that are livepatches.
var livepatchModules = map[string]bool{
	"test_klp_livepatch":       true,
	"test_klp_atomic_replace":  true,
	"test_klp_callbacks_demo":  true,
	"test_klp_callbacks_demo2": true,
	"test_klp_state":           true,
	"test_klp_state2":          true,
	"test_klp_state3":          true,
}

// guestKO is where the test modules are placed in the guest.
const guestKO = "/root/ko"

type builtModules struct {
	kernel *testenv.Kernel
	tree   string
	ko     map[string]string // module name → host .ko path
}

var (
	buildOnce sync.Once
	built     *builtModules
	buildErr  error
)

// modules builds the test modules once per test process (and, through the
// test cache, once per kernel): two compilers at a time.
func modules(t testing.TB) *builtModules {
	t.Helper()
	k := testenv.RequireKernel(t)
	buildOnce.Do(func() {
		ctx := context.Background()
		tree, err := k.SourceTree(ctx)
		if err != nil {
			buildErr = fmt.Errorf("kernel source: %w", err)
			return
		}
		b := &builtModules{kernel: k, tree: tree, ko: map[string]string{}}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 2)
		errs := make([]error, len(testModules))
		for i, name := range testModules {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				src, err := os.ReadFile(filepath.Join(tree, "lib/livepatch", name+".c"))
				if err != nil {
					errs[i] = err
					return
				}
				files := map[string][]byte{name + ".c": src}
				// test_klp_state3.c is test_klp_state2.c with other
				// version numbers: it #includes it. Give the included file
				// a name kbuild does not compile on its own.
				if inc := []byte(`#include "test_klp_state2.c"`); bytes.Contains(src, inc) {
					state2, err := os.ReadFile(filepath.Join(tree, "lib/livepatch/test_klp_state2.c"))
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
		for _, err := range errs {
			if err != nil {
				buildErr = err
				return
			}
		}
		built = b
	})
	if buildErr != nil {
		t.Fatalf("build test modules: %v", buildErr)
	}
	return built
}

// files places every test module in the guest under guestKO.
func (b *builtModules) files() []vmtest.File {
	var fs []vmtest.File
	for name, ko := range b.ko {
		fs = append(fs, vmtest.File{Path: guestKO + "/" + name + ".ko", Host: ko})
	}
	return fs
}
