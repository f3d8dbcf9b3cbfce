// Command demo runs kelp's main job for real: it builds
// examples/cmdline-hide-password.patch into a livepatch module with kelp
// build against the installed Debian kernel, boots that kernel under QEMU
// with a password on its command line, and shows /proc/cmdline before
// kelp load, kelp list, /proc/cmdline while patched, and after kelp
// unload. It is what `make demo` runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelp-project/kelp/build"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

const example = "examples/cmdline-hide-password.patch"

func main() {
	verbose := flag.Bool("v", false, "stream the guest console")
	release := flag.String("debian", "12", `the kernel: "12" (Debian 12's 6.1, installed by make deps), "13" (Debian 13's 6.12, in its build root), "12-cloud" or "13-cloud"`)
	flag.Parse()
	if err := run(*verbose, *release); err != nil {
		fmt.Fprintln(os.Stderr, "demo: "+err.Error())
		os.Exit(1)
	}
}

func run(verbose bool, release string) error {
	ctx := context.Background()
	var k *testenv.Kernel
	var err error
	from := "Debian image, headers and source installed by make deps"
	switch release {
	case "12":
		k, err = testenv.DefaultKernel()
	case "12-cloud":
		k, err = testenv.Cloud61Kernel()
	case "13", "13-cloud":
		flavour := map[string]string{"13": "amd64", "13-cloud": "cloud-amd64"}[release]
		k, err = testenv.Debian13Kernel(flavour)
		from = "Debian 13 packages in the trixie build root made by make deps; built there with gcc-14"
	default:
		return fmt.Errorf("-debian %q: want 12, 13, 12-cloud or 13-cloud", release)
	}
	if err != nil {
		return err
	}
	fmt.Printf("== kernel %s (%s)\n", k.Release, from)
	fmt.Println("== the target's symbols: /proc/kallsyms of a boot of that kernel (kelp symbols; cached)")
	symbols, err := vmtest.Kallsyms(ctx, k)
	if err != nil {
		return err
	}
	topts, err := k.TreeOptions()
	if err != nil {
		return err
	}
	out, err := os.MkdirTemp("", "kelp-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	fmt.Printf("== kelp build %s (the source tree is extracted and prepared once)\n", example)
	patch, _ := os.ReadFile(example)
	fmt.Printf("%s\n", indent(string(patch)))
	start := time.Now()
	res, err := build.Build(ctx, build.Options{
		Patches:    []string{example},
		Tree:       topts,
		Symbols:    symbols,
		ModulesDir: k.ModulesDir,
		OutDir:     out,
		Progress: func(e build.Event) {
			if e.Done {
				fmt.Printf("   %-8s %6.2fs  %s\n", e.Stage, e.Elapsed.Seconds(), e.Message)
			}
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("== built %s in %.1fs\n", filepath.Base(res.Module), time.Since(start).Seconds())

	name := res.Name
	steps := []vmtest.Step{
		{Name: "cat /proc/cmdline", Shell: "cat /proc/cmdline"},
		{Name: "kelp load " + name + ".ko", Shell: "kelp load /root/" + name + ".ko"},
		{Name: "kelp list", Shell: "kelp list"},
		{Name: "cat /proc/cmdline ", Shell: "cat /proc/cmdline"},
		{Name: "kelp unload " + name, Shell: "kelp unload " + name},
		{Name: "cat /proc/cmdline  ", Shell: "cat /proc/cmdline"},
	}
	cfg := vmtest.Config{
		Kernel:  k,
		Cmdline: []string{"iscsi.password=hunter2"},
		Files:   []vmtest.File{{Path: "/root/" + name + ".ko", Host: res.Module}},
		Steps:   steps,
		OnStep: func(r vmtest.StepResult) {
			// kelp's progress goes to stderr, its summary to stdout: show
			// them in the order a terminal would.
			fmt.Printf("\n[guest]$ %s\n%s%s", strings.TrimSpace(r.Name), r.Stderr, r.Stdout)
			if r.Exit != 0 {
				fmt.Printf("(exit %d)\n", r.Exit)
			}
		},
	}
	if verbose {
		cfg.Console = os.Stderr
	}
	cfg.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	fmt.Println("== booting it under QEMU (TCG) with iscsi.password=hunter2 on the command line")
	vm, err := vmtest.Run(ctx, cfg)
	if err != nil {
		if !verbose && vm != nil {
			fmt.Fprintln(os.Stderr, vm.Console)
		}
		return err
	}
	fmt.Printf("\n== done: built, booted, patched and restored; the guest ran for %.1fs\n", vm.Elapsed.Seconds())
	for _, r := range vm.Steps {
		if r.Exit != 0 {
			return fmt.Errorf("step %q failed", r.Name)
		}
	}
	before, during, after := vm.Steps[0].Stdout, vm.Steps[3].Stdout, vm.Steps[5].Stdout
	switch {
	case !strings.Contains(before, "password=hunter2"):
		return fmt.Errorf("/proc/cmdline before the patch: %q", before)
	case !strings.Contains(during, "password=********") || strings.Contains(during, "hunter2"):
		return fmt.Errorf("/proc/cmdline did not change while patched (%q)", during)
	case !strings.Contains(after, "password=hunter2"):
		return fmt.Errorf("/proc/cmdline after kelp unload: %q", after)
	}
	return nil
}

func indent(s string) string {
	return "   | " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n   | ")
}

// kallsyms returns the test kernel's /proc/kallsyms as kelp symbols would
// print it on the target: taken from a boot of the kernel the first time,
// in the same cache entry the tests use.
