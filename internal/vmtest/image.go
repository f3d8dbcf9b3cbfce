package vmtest

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest/proto"
)

// baseImages caches the part of the initramfs shared by every boot of a
// kernel: guest init, busybox, kelp, the kernel config and module index.
var baseImages sync.Map // release → *baseImage

type baseImage struct {
	once sync.Once
	data []byte
	err  error
}

func base(k *testenv.Kernel) ([]byte, error) {
	v, _ := baseImages.LoadOrStore(k.Release, &baseImage{})
	b := v.(*baseImage)
	b.once.Do(func() { b.data, b.err = buildBase(k) })
	return b.data, b.err
}

func buildBase(k *testenv.Kernel) ([]byte, error) {
	bins, err := buildGuestBinaries()
	if err != nil {
		return nil, err
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, &testenv.ErrMissing{What: "busybox", Package: "busybox-static"}
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	if dynamic, err := isDynamic(bb); err != nil || dynamic {
		return nil, &testenv.ErrMissing{What: "a static busybox (" + busybox + " is dynamic)", Package: "busybox-static"}
	}
	applets, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	cfg, err := os.ReadFile(k.Config)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	a := newArchive(&buf)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "etc", "var/lib", "persist"} {
		if err := a.mkdirAll(d); err != nil {
			return nil, err
		}
	}
	steps := []error{
		a.file("init", 0o755, bins.init),
		a.file("bin/busybox", 0o755, bb),
		a.file("usr/bin/kelp", 0o755, bins.kelp),
		a.file("boot/config-"+k.Release, 0o644, cfg),
		a.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")),
		a.file("etc/group", 0o644, []byte("root:x:0:\n")),
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"modules.dep", "modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		data, err := os.ReadFile(filepath.Join(k.ModulesDir, name))
		if err != nil {
			return nil, err
		}
		if err := a.file(filepath.Join("lib/modules", k.Release, name), 0o644, data); err != nil {
			return nil, err
		}
	}
	for _, p := range strings.Fields(string(applets)) {
		if p == "bin/busybox" {
			continue
		}
		if err := a.symlink(p, "/bin/busybox"); err != nil {
			return nil, err
		}
	}
	if err := a.close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeInitramfs writes the boot's initramfs to a temporary file: the
// cached base archive followed by an archive with this boot's plan, payload
// files and kernel modules (the kernel unpacks concatenated archives in
// order). The file is returned open and already removed, so that nothing
// is left behind however the test process ends; the guest's QEMU reads it
// through a descriptor it inherits.
func writeInitramfs(k *testenv.Kernel, cfg Config) (*os.File, error) {
	b, err := base(k)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	a := newArchive(&buf)
	plan := proto.Plan{Modules: cfg.Modules, Disk: cfg.Disk != nil, Steps: cfg.Steps}
	if cfg.Disk != nil {
		plan.Modules = append(append([]string(nil), diskModules...), plan.Modules...)
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	if err := a.file(proto.PlanPath, 0o644, planJSON); err != nil {
		return nil, err
	}
	if len(plan.Modules) > 0 {
		f, err := os.Open(filepath.Join(k.ModulesDir, "modules.dep"))
		if err != nil {
			return nil, err
		}
		md, err := proto.ParseModuleDeps(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		files, err := md.LoadOrder(plan.Modules)
		if err != nil {
			return nil, err
		}
		for _, rel := range files {
			data, err := os.ReadFile(filepath.Join(k.ModulesDir, rel))
			if err != nil {
				return nil, err
			}
			if err := a.file(filepath.Join("lib/modules", k.Release, rel), 0o644, data); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range sortedFiles(cfg.Files) {
		data, mode, err := f.contents()
		if err != nil {
			return nil, err
		}
		if err := a.file(f.Path, int64(mode), data); err != nil {
			return nil, err
		}
	}
	if err := a.close(); err != nil {
		return nil, err
	}
	out, err := os.CreateTemp("", "kelp-initramfs-*.cpio")
	if err != nil {
		return nil, err
	}
	err1 := os.Remove(out.Name())
	_, err2 := out.Write(b)
	_, err3 := out.Write(buf.Bytes())
	if err := errors.Join(err1, err2, err3); err != nil {
		out.Close()
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	return out, nil
}

// isDynamic reports whether an executable needs a program interpreter.
func isDynamic(exe []byte) (bool, error) {
	f, err := elf.NewFile(bytes.NewReader(exe))
	if err != nil {
		return false, err
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}
