// Command guestinit is PID 1 of kelp's test virtual machines. It mounts the
// pseudo filesystems, loads the requested kernel modules, runs the plan's
// steps through busybox sh, reports each result on the report serial port,
// sends the kernel log and powers the machine off.
//
// With --runner it is instead a service of a full Debian system booted with
// systemd: the plan and payload come on a second disk mounted at /kelp, the
// steps run once the system is up, and it powers the system off cleanly.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/internal/vmtest/proto"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--runner" {
		runner()
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guestinit: must run as PID 1 inside a test VM")
		os.Exit(2)
	}
	// Whatever happens, never return: PID 1 exiting panics the kernel, which
	// the host would report as a guest panic instead of the real problem.
	defer func() {
		if r := recover(); r != nil {
			console("guestinit: panic: %v", r)
		}
		halt()
	}()
	if err := mountAll(); err != nil {
		console("guestinit: %v", err)
		return
	}
	tty, rep, err := openReports()
	if err != nil {
		console("guestinit: %v", err)
		return
	}
	run(rep)
	finish(rep)
	if _, err := os.Stat(proto.PersistDir + "/lost+found"); err == nil {
		Sync()
		Unmount(proto.PersistDir)
	}
	rep.Send(proto.KindDone, nil)
	tty.Sync()
}

// runner is the --runner mode: a systemd service in a full system.
func runner() {
	tty, rep, err := openReports()
	if err != nil {
		console("kelp test runner: %v", err)
		os.Exit(1)
	}
	run(rep)
	finish(rep)
	rep.Send(proto.KindDone, nil)
	tty.Sync()
	Sync()
	// A clean shutdown lets journald and the disk settle for the next boot.
	if err := exec.Command("systemctl", "poweroff", "--no-block").Run(); err != nil {
		console("kelp test runner: systemctl poweroff: %v", err)
		PowerOff()
	}
}

func openReports() (*os.File, *proto.Writer, error) {
	tty, err := os.OpenFile(proto.ReportTTY, os.O_WRONLY|os.O_SYNC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open report port: %w", err)
	}
	if err := MakeRawTTY(int(tty.Fd())); err != nil {
		console("report port: %v", err)
	}
	return tty, proto.NewWriter(tty), nil
}

// finish sends the kernel log.
func finish(rep *proto.Writer) {
	if klog, err := KernelLog(); err == nil {
		rep.Send(proto.KindDmesg, klog)
	} else {
		rep.Send(proto.KindSetup, []byte("read kernel log: "+err.Error()))
	}
}

func run(rep *proto.Writer) {
	rel, _ := sys.Release()
	rep.Send(proto.KindReady, []byte(rel))
	data, err := os.ReadFile(proto.PlanPath)
	if err != nil {
		rep.Send(proto.KindSetup, []byte("read plan: "+err.Error()))
		return
	}
	var plan proto.Plan
	if err := json.Unmarshal(data, &plan); err != nil {
		rep.Send(proto.KindSetup, []byte("parse plan: "+err.Error()))
		return
	}
	if err := loadModules(rel, plan.Modules); err != nil {
		rep.Send(proto.KindSetup, []byte(err.Error()))
		return
	}
	if plan.Disk {
		if err := os.MkdirAll(proto.PersistDir, 0o755); err == nil {
			err = Mount("/dev/vda", proto.PersistDir, "ext4", 0, "")
		}
		if err != nil {
			rep.Send(proto.KindSetup, []byte("persistent disk: "+err.Error()))
			return
		}
	}
	for _, st := range plan.Steps {
		res := runStep(st)
		data, _ := json.Marshal(res)
		rep.Send(proto.KindStep, data)
	}
}

func runStep(st proto.Step) proto.StepResult {
	res := proto.StepResult{Name: st.Name}
	ctx := context.Background()
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", st.Shell)
	cmd.Dir = "/root"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.Exit = -1
		res.Error = fmt.Sprintf("killed after timeout %s", st.Timeout)
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	case err != nil:
		res.Exit = -1
		res.Error = err.Error()
	}
	return res
}

func mountAll() error {
	mounts := []struct {
		fstype, target string
		flags          uintptr
	}{
		{"proc", "/proc", MountNoSuid | MountNoDev | MountNoExec},
		{"sysfs", "/sys", MountNoSuid | MountNoDev | MountNoExec},
		{"devtmpfs", "/dev", MountNoSuid},
		{"tmpfs", "/tmp", MountNoSuid | MountNoDev},
		{"tmpfs", "/run", MountNoSuid | MountNoDev},
		{"debugfs", "/sys/kernel/debug", 0},
		{"securityfs", "/sys/kernel/security", 0},
		{"tracefs", "/sys/kernel/tracing", 0},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := Mount(m.fstype, m.target, m.fstype, m.flags, ""); err != nil {
			return err
		}
	}
	return nil
}

func loadModules(rel string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	dir := filepath.Join("/lib/modules", rel)
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("load modules: %w", err)
	}
	md, err := proto.ParseModuleDeps(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("load modules: %w", err)
	}
	order, err := md.LoadOrder(names)
	if err != nil {
		return fmt.Errorf("load modules: %w", err)
	}
	for _, file := range order {
		if err := loadModule(filepath.Join(dir, file)); err != nil {
			return fmt.Errorf("load modules: %w", err)
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags = sys.ModuleCompressedFile
	}
	err = sys.FinitModule(f, "", flags)
	if errors.Is(err, sys.EEXIST) {
		return nil
	}
	return err
}

// console writes a line to the kernel console, which the host records.
func console(format string, args ...any) {
	msg := fmt.Sprintf(format, args...) + "\n"
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		f.WriteString(msg)
		f.Close()
		return
	}
	os.Stderr.WriteString(msg)
}

func halt() {
	err := PowerOff()
	console("guestinit: power off: %v", err)
	for {
		time.Sleep(time.Hour)
	}
}
