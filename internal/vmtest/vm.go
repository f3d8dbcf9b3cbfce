// Package vmtest boots the real Debian test kernel under QEMU with an
// initramfs written from Go, runs test steps inside the guest and returns
// their results together with the guest's console and kernel log.
//
// The guest's PID 1 is guestinit (a static Go binary); busybox provides the
// shell for steps, and kelp itself is installed as /usr/bin/kelp. Results
// travel on the guest's second serial port with checksummed framing (see
// package proto), so kernel messages on the console cannot be mistaken for
// them.
package vmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest/proto"
)

// Step is one shell command run in the guest; StepResult its outcome.
type (
	Step       = proto.Step
	StepResult = proto.StepResult
)

// File is a payload file placed in the guest, from Data or from the host
// file Host.
type File struct {
	Path string // absolute guest path
	Data []byte
	Host string
	Mode os.FileMode // default 0644
}

// contents returns the file's bytes and permission bits.
func (f File) contents() ([]byte, os.FileMode, error) {
	data := f.Data
	if f.Host != "" {
		var err error
		if data, err = os.ReadFile(f.Host); err != nil {
			return nil, 0, fmt.Errorf("payload %s: %w", f.Path, err)
		}
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	return data, mode, nil
}

// Config describes one boot.
type Config struct {
	Kernel  *testenv.Kernel // default: testenv.DefaultKernel()
	Steps   []Step
	Modules []string // kernel modules loaded (with dependencies) before the steps
	Files   []File
	Cmdline []string // extra kernel command-line arguments
	Disk    *Disk    // persistent disk, mounted at /persist
	// System boots a full Debian system (systemd) from this root disk
	// instead of the busybox initramfs. Files then go to a payload disk
	// mounted at /kelp, and Modules and Disk are not used.
	System *SystemDisk
	// KillAfter names a step: QEMU is killed as soon as its result
	// arrives, like a machine losing power at that moment.
	KillAfter string
	// CrashIn names a step expected to crash the guest kernel (e.g. echo
	// c > /proc/sysrq-trigger): the boot then ends with the kernel's
	// panic before that step reports, and the panic line is in
	// Result.Panic; a boot that does not crash there is an error.
	CrashIn string
	Timeout time.Duration
	Memory  string // QEMU -m, default 1G
	CPUs    int    // default defaultCPUs(kernel)

	// StallTimeout bounds a silence of the console before the guest's
	// userspace starts (default DefaultStallTimeout; three times that
	// before the kernel's first console line, as decompressing and early
	// setup print nothing and are slow on a loaded host). A guest that
	// stalls there has run nothing of the test yet: it is killed and booted
	// again, up to BootAttempts times, each retry logged with its reason.
	// A kernel that reports itself stuck there (a hung task, a soft lockup,
	// an RCU stall) is a stall too, even while its console keeps printing,
	// and so is a guest whose init has not started after EarlyBootLimit.
	StallTimeout time.Duration
	// EarlyBootLimit bounds the time from QEMU's start to the guest's init
	// (default DefaultEarlyBootLimit).
	EarlyBootLimit time.Duration

	// Console, when set, receives the guest console as it is produced
	// (every attempt's).
	Console io.Writer
	// OnStep, when set, is called as each step result arrives.
	OnStep func(StepResult)
	// Log, when set, hears what the harness does besides booting: waiting
	// for a guest slot, a stalled boot and its retry.
	Log func(format string, args ...any)

	qemu string // tests: the QEMU binary instead of qemu-system-x86_64
}

// DefaultTimeout bounds a boot whose Config has no Timeout.
const DefaultTimeout = 3 * time.Minute

// DefaultStallTimeout is how long the console may stay silent before the
// guest's userspace starts. A normal early boot prints every few seconds
// even on a loaded machine.
const DefaultStallTimeout = 60 * time.Second

// DefaultEarlyBootLimit is how long a guest may take to start its init.
// An idle machine starts it in seconds; a loaded one in a minute or two.
const DefaultEarlyBootLimit = 4 * time.Minute

// stuckMarkers are what the kernel prints when it detects that it is
// stuck; before init starts none of them is the test's doing.
var stuckMarkers = []string{
	"blocked for more than",         // hung task detector
	"soft lockup - CPU#",            // soft lockup detector
	"self-detected stall on CPU",    // RCU
	"detected stalls on CPUs/tasks", // RCU
}

// BootAttempts is how many times a boot that stalls before its userspace
// starts is tried.
const BootAttempts = 3

// userspaceMarker is the kernel's console line when it starts init (both
// rdinit= and root= boots): from there on the guest may have side effects
// and a boot is never retried.
const userspaceMarker = " as init process"

// Result is what one boot produced.
type Result struct {
	Release string
	Steps   []StepResult
	Dmesg   string
	Console string
	// Elapsed is the boot's time, every attempt, from when it got its
	// guest slot; SlotWait the wait for that slot.
	Elapsed  time.Duration
	SlotWait time.Duration
	// Panic is the kernel's panic line of a boot that crashed as
	// Config.CrashIn expected.
	Panic string
}

// Step returns the result of the named step.
func (r *Result) Step(name string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepResult{}, false
}

// BootError is a failed boot: QEMU missing, kernel missing, guest hang,
// guest panic, a setup failure inside the guest. Error() is one line; the
// console log is in Console.
type BootError struct {
	Msg     string
	Console string
}

func (e *BootError) Error() string { return "vm: " + e.Msg }

// Run boots a guest, runs cfg.Steps and powers it off. A non-nil error is a
// *BootError or a host-side setup error; the Result is returned in both
// cases with whatever was collected.
//
// The boot waits for a machine-wide guest slot first (see Slots); the wait
// is not part of cfg.Timeout. A boot whose console stalls before userspace
// starts is retried (BootAttempts).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	k := cfg.Kernel
	if k == nil {
		var err error
		if k, err = testenv.DefaultKernel(); err != nil {
			return &Result{}, err
		}
	}
	qemu := cfg.qemu
	if qemu == "" {
		var err error
		if qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			return &Result{}, &testenv.ErrMissing{What: "qemu-system-x86_64", Package: "qemu-system-x86"}
		}
	}
	if _, err := os.Stat(k.Image); err != nil {
		return &Result{}, &testenv.ErrMissing{What: "kernel image " + k.Image, Package: "linux-image-" + k.Release}
	}
	if cfg.System != nil && (cfg.Disk != nil || len(cfg.Modules) > 0) {
		return &Result{}, fmt.Errorf("vm: Disk and Modules apply to initramfs boots, not system boots")
	}
	release, err := acquireSlot(ctx, cfg.Log)
	if err != nil {
		return &Result{}, err
	}
	defer release()
	waited := time.Since(start)
	start = time.Now()
	for attempt := 1; ; attempt++ {
		res, err := boot(ctx, k, qemu, cfg)
		res.Elapsed = time.Since(start)
		res.SlotWait = waited
		var stall *stallError
		if !errors.As(err, &stall) {
			return res, err
		}
		if attempt == BootAttempts {
			return res, &BootError{Msg: fmt.Sprintf("guest stalled before its init started in %d attempts (%s)", attempt, stall), Console: res.Console}
		}
		if cfg.Log != nil {
			cfg.Log("vm: guest stalled before its init started (%s); booting again (attempt %d of %d)", stall, attempt+1, BootAttempts)
		}
	}
}

// stallError is a boot killed because it made no progress before the
// guest's userspace started; reason says how that was seen.
type stallError struct {
	reason string
}

func (e *stallError) Error() string { return e.reason }

// initramfsFD is the descriptor QEMU reads a boot's own initramfs from,
// after the console's (3) and the reports' (4).
const initramfsFD = 5

// boot is one attempt of Run.
func boot(ctx context.Context, k *testenv.Kernel, qemu string, cfg Config) (*Result, error) {
	res := &Result{}
	var initrd, payload string
	var initramfs *os.File // this boot's own, removed already
	var err error
	if cfg.System != nil {
		initrd = cfg.System.Image.Initrd
		if payload, err = writePayloadDisk(cfg); err != nil {
			return res, err
		}
		defer os.Remove(payload)
	} else {
		f, err := writeInitramfs(k, cfg)
		if err != nil {
			return res, err
		}
		defer f.Close()
		initramfs = f
		initrd = "/proc/self/fd/" + fmt.Sprint(initramfsFD)
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	stallAfter := cfg.StallTimeout
	if stallAfter == 0 {
		stallAfter = DefaultStallTimeout
	}
	earlyLimit := cfg.EarlyBootLimit
	if earlyLimit == 0 {
		earlyLimit = DefaultEarlyBootLimit
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	conR, conW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	args := qemuArgs(k, cfg, initrd, payload)
	cmd := exec.Command(qemu, args...)
	// Pdeathsig follows the starting thread: keep it for the guest's life.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sys.DieWithParent(cmd)
	cmd.ExtraFiles = []*os.File{conW, repW} // fd 3: console, fd 4: reports
	if initramfs != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, initramfs) // initramfsFD
	}
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
	}
	conW.Close()
	repW.Close()

	var console syncBuffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w := io.Writer(&console)
		if cfg.Console != nil {
			w = io.MultiWriter(&console, cfg.Console)
		}
		io.Copy(w, conR)
	}()
	reports := reportState{killAfter: cfg.KillAfter}
	killNow := make(chan struct{})
	var killOnce sync.Once
	onStep := func(sr StepResult) {
		if cfg.OnStep != nil {
			cfg.OnStep(sr)
		}
		if cfg.KillAfter != "" && sr.Name == cfg.KillAfter {
			killOnce.Do(func() { close(killNow) })
		}
	}
	go func() {
		defer wg.Done()
		reports.collect(repR, res, onStep)
	}()
	stalled := make(chan *stallError, 1)
	watchDone := make(chan struct{})
	defer close(watchDone)
	go watchEarlyBoot(&console, &reports, stallAfter, earlyLimit, stalled, watchDone)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	timedOut := false
	var stall *stallError
	select {
	case waitErr = <-exited:
	case <-killNow:
		cmd.Process.Kill()
		<-exited
		reports.killed = true
	case stall = <-stalled:
		cmd.Process.Kill()
		<-exited
	case <-ctx.Done():
		timedOut = true
		cmd.Process.Kill()
		waitErr = <-exited
	}
	wg.Wait()
	conR.Close()
	repR.Close()
	res.Console = console.String()
	if stall != nil {
		return res, stall
	}
	return res, diagnose(res, &reports, cfg.CrashIn, timedOut, timeout, waitErr, qemuErr.String(), ctx)
}

// watchEarlyBoot reports on stalled when, before the guest's userspace
// starts, the console stays silent for limit (three times that before its
// first line), the kernel reports itself stuck, or init has not started
// after early. It stops watching once userspace runs, or when done closes.
func watchEarlyBoot(console *syncBuffer, rs *reportState, limit, early time.Duration, stalled chan<- *stallError, done <-chan struct{}) {
	tick := time.NewTicker(min(time.Second, limit/4))
	defer tick.Stop()
	start := time.Now()
	lastLen, lastChange := 0, start
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		rs.mu.Lock()
		ready := rs.ready
		rs.mu.Unlock()
		text := console.String()
		if ready || strings.Contains(text, userspaceMarker) {
			return
		}
		if reason := earlyBootStuck(text); reason != "" {
			stalled <- &stallError{reason: reason}
			return
		}
		if time.Since(start) >= early {
			stalled <- &stallError{reason: fmt.Sprintf("init not started after %s; last console line %q", early, lastLine(text))}
			return
		}
		if len(text) != lastLen {
			lastLen, lastChange = len(text), time.Now()
			continue
		}
		allowed := limit
		if len(text) == 0 {
			allowed = 3 * limit
		}
		if time.Since(lastChange) >= allowed {
			stalled <- &stallError{reason: fmt.Sprintf("no console output for %s after %q", allowed, lastLine(text))}
			return
		}
	}
}

// earlyBootStuck names the first console line where the kernel reports
// itself stuck, or returns "".
func earlyBootStuck(text string) string {
	for _, line := range strings.Split(text, "\n") {
		for _, m := range stuckMarkers {
			if strings.Contains(line, m) {
				return fmt.Sprintf("the kernel reported itself stuck: %q", strings.TrimSpace(line))
			}
		}
	}
	return ""
}

// lastLine is the last non-empty line of a console log.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\r\n "), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if line == "" {
		return "(no output)"
	}
	return line
}

func qemuArgs(k *testenv.Kernel, cfg Config, initrd, payload string) []string {
	mem := cfg.Memory
	if mem == "" {
		mem = "1G"
	}
	cpus := cfg.CPUs
	if cpus == 0 {
		cpus = defaultCPUs(k.Release)
	}
	base := []string{"console=ttyS0", "panic=-1", "rdinit=/init"}
	if cfg.System != nil {
		base = []string{"root=/dev/vda", "rw", "console=ttyS0", "panic=-1"}
	}
	cmdline := append(base, cfg.Cmdline...)
	args := []string{
		"-accel", "tcg", "-cpu", "max",
		"-m", mem, "-smp", fmt.Sprint(cpus),
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
		"-kernel", k.Image, "-initrd", initrd,
		"-append", strings.Join(cmdline, " "),
		"-serial", "file:/dev/fd/3",
		"-serial", "file:/dev/fd/4",
	}
	if cfg.Disk != nil {
		args = append(args, "-drive", "file="+cfg.Disk.Path+",format=raw,if=virtio,cache=writeback")
	}
	if cfg.System != nil {
		args = append(args,
			"-drive", "file="+cfg.System.Overlay+",format=qcow2,if=virtio,cache=writeback",
			"-drive", "file="+payload+",format=raw,if=virtio,readonly=on")
	}
	return args
}

// reportState follows the guest's reports.
type reportState struct {
	mu       sync.Mutex
	ready    bool
	done     bool
	setupErr string
	protoErr error
	last     string
	killed   bool // QEMU killed on request (Config.KillAfter)
	// killAfter is Config.KillAfter; cut is set once its step reported:
	// QEMU is being killed, and a report cut off in the middle is no
	// error.
	killAfter string
	cut       bool
}

func (rs *reportState) collect(r io.Reader, res *Result, onStep func(StepResult)) {
	fr := proto.NewReader(r)
	for {
		f, err := fr.Next()
		if err != nil {
			rs.mu.Lock()
			if err != io.EOF && !rs.cut {
				rs.protoErr = err
			}
			rs.mu.Unlock()
			io.Copy(io.Discard, r)
			return
		}
		rs.mu.Lock()
		rs.last = f.Kind
		switch f.Kind {
		case proto.KindReady:
			rs.ready = true
			res.Release = string(f.Payload)
		case proto.KindSetup:
			if rs.setupErr == "" {
				rs.setupErr = string(f.Payload)
			}
		case proto.KindStep:
			var sr StepResult
			if err := json.Unmarshal(f.Payload, &sr); err != nil {
				rs.protoErr = fmt.Errorf("step report: %w", err)
			} else {
				res.Steps = append(res.Steps, sr)
				rs.last = "step " + sr.Name
				rs.cut = rs.cut || rs.killAfter != "" && sr.Name == rs.killAfter
				if onStep != nil {
					onStep(sr)
				}
			}
		case proto.KindDmesg:
			res.Dmesg = string(f.Payload)
		case proto.KindDone:
			rs.done = true
		}
		rs.mu.Unlock()
	}
}

// diagnose turns the way a boot ended into one clear error, or nil.
func diagnose(res *Result, rs *reportState, crashIn string, timedOut bool, timeout time.Duration, waitErr error, qemuStderr string, ctx context.Context) error {
	fail := func(format string, args ...any) error {
		return &BootError{Msg: fmt.Sprintf(format, args...), Console: res.Console}
	}
	panicLine := findPanic(res.Console)
	if crashIn != "" {
		_, reported := res.Step(crashIn)
		switch {
		case panicLine != "" && rs.ready && !reported && !timedOut:
			res.Panic = panicLine
			return nil
		case panicLine != "":
			return fail("guest kernel panicked (%s), not in step %s as expected", panicLine, crashIn)
		case reported:
			return fail("step %s finished; the guest kernel was expected to crash in it", crashIn)
		}
		// No panic: the failure below says how the boot ended.
	}
	if panicLine != "" {
		return fail("guest kernel panicked: %s", panicLine)
	}
	if timedOut {
		if errors.Is(ctx.Err(), context.Canceled) {
			return fail("boot canceled")
		}
		where := "before the guest init started"
		if rs.ready {
			where = "after " + rs.last
		}
		return fail("guest timed out after %s (%s)", timeout, where)
	}
	if rs.protoErr != nil {
		return fail("report channel: %v", rs.protoErr)
	}
	if rs.setupErr != "" {
		return fail("guest setup: %s", rs.setupErr)
	}
	if rs.killed {
		return nil
	}
	if waitErr != nil {
		msg := strings.TrimSpace(qemuStderr)
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg == "" {
			msg = waitErr.Error()
		}
		return fail("qemu failed: %s", msg)
	}
	if !rs.ready {
		return fail("guest stopped before its init reported (see console)")
	}
	if !rs.done {
		return fail("guest stopped after %s without finishing its steps", rs.last)
	}
	return nil
}

// findPanic returns the kernel's panic line from a console log.
func findPanic(console string) string {
	for _, line := range strings.Split(console, "\n") {
		if i := strings.Index(line, "Kernel panic - not syncing"); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	return ""
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// defaultCPUs is a guest's vCPU count when its Config names none: two,
// and one for kernels from 6.12 on. Under QEMU's TCG the 6.12 kernel's
// int3-based text patching now and then Oopses ("int3" in code it was
// patching) on the other vCPU: while it boots, in a livepatch's
// transition (the selftests' callbacks cases), and with a syscall called
// in a loop while it is patched. On one vCPU no code runs while it is
// patched.
func defaultCPUs(release string) int {
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err == nil && (major > 6 || major == 6 && minor >= 12) {
		return 1
	}
	return 2
}
