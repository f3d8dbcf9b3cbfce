// Command demo boots the Debian test kernel under QEMU and shows kelp at
// work inside it: `kelp check`, then the kernel's sample livepatch changing
// /proc/cmdline live and being reverted. It is what `make demo` runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

func main() {
	verbose := flag.Bool("v", false, "stream the guest console")
	flag.Parse()
	if err := run(*verbose); err != nil {
		fmt.Fprintln(os.Stderr, "demo: "+err.Error())
		os.Exit(1)
	}
}

func run(verbose bool) error {
	ctx := context.Background()
	k, err := testenv.DefaultKernel()
	if err != nil {
		return err
	}
	fmt.Printf("== kernel %s (Debian image, headers and source installed by make deps)\n", k.Release)
	fmt.Println("== preparing the kernel source tree and building samples/livepatch/livepatch-sample.ko (cached after the first run)")
	tree, err := k.SourceTree(ctx)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(tree, "samples/livepatch/livepatch-sample.c"))
	if err != nil {
		return err
	}
	ko, err := k.BuildModule(ctx, testenv.ModuleSource{Name: "livepatch-sample", Files: map[string][]byte{"livepatch-sample.c": src}})
	if err != nil {
		return err
	}

	steps := []vmtest.Step{
		{Name: "kelp check", Shell: "kelp check"},
		{Name: "cat /proc/cmdline", Shell: "cat /proc/cmdline"},
		{Name: "insmod livepatch-sample.ko", Shell: "insmod /root/livepatch-sample.ko && while [ \"$(cat /sys/kernel/livepatch/livepatch_sample/transition)\" = 1 ]; do sleep 0.1; done; echo enabled=$(cat /sys/kernel/livepatch/livepatch_sample/enabled)"},
		{Name: "cat /proc/cmdline", Shell: "cat /proc/cmdline"},
		{Name: "echo 0 > /sys/kernel/livepatch/livepatch_sample/enabled", Shell: "echo 0 > /sys/kernel/livepatch/livepatch_sample/enabled && while [ -e /sys/kernel/livepatch/livepatch_sample ] && [ \"$(cat /sys/kernel/livepatch/livepatch_sample/transition)\" = 1 ]; do sleep 0.1; done"},
		{Name: "cat /proc/cmdline", Shell: "cat /proc/cmdline"},
		{Name: "rmmod livepatch_sample", Shell: "rmmod livepatch_sample"},
		{Name: "kernel log", Shell: "dmesg | grep -E 'livepatch' || true"},
	}
	cfg := vmtest.Config{
		Kernel: k,
		Files:  []vmtest.File{{Path: "/root/livepatch-sample.ko", Host: ko}},
		Steps:  steps,
		OnStep: func(r vmtest.StepResult) {
			fmt.Printf("\n[guest]$ %s\n%s", r.Name, r.Stdout)
			if r.Stderr != "" {
				fmt.Print(r.Stderr)
			}
			if r.Exit != 0 {
				fmt.Printf("(exit %d)\n", r.Exit)
			}
		},
	}
	if verbose {
		cfg.Console = os.Stderr
	}
	fmt.Println("== booting it under QEMU (TCG)")
	res, err := vmtest.Run(ctx, cfg)
	if err != nil {
		if !verbose && res != nil {
			fmt.Fprintln(os.Stderr, res.Console)
		}
		return err
	}
	fmt.Printf("\n== done: guest booted, patched and restored in %.1fs\n", res.Elapsed.Seconds())
	for _, r := range res.Steps {
		if r.Exit != 0 {
			return fmt.Errorf("step %q failed", r.Name)
		}
	}
	if got := strings.TrimSpace(res.Steps[3].Stdout); got != "this has been live patched" {
		return fmt.Errorf("/proc/cmdline did not change while patched (%q)", got)
	}
	return nil
}
