package livepatch

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// State is a task's or a transition's patch state, as in
// /proc/<pid>/task/<tid>/patch_state.
type State int

// Patch states (include/linux/livepatch.h KLP_UNDEFINED/UNPATCHED/PATCHED).
const (
	Undefined State = -1
	Unpatched State = 0
	Patched   State = 1
)

// Verb names a transition towards s: "patching" or "unpatching".
func (s State) Verb() string {
	if s == Patched {
		return "patching"
	}
	return "unpatching"
}

func (s State) String() string {
	switch s {
	case Patched:
		return "patched"
	case Unpatched:
		return "unpatched"
	}
	return "none"
}

func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *State) UnmarshalText(b []byte) error {
	switch string(b) {
	case "patched":
		*s = Patched
	case "unpatched":
		*s = Unpatched
	case "none":
		*s = Undefined
	default:
		return fmt.Errorf("unknown patch state %q", b)
	}
	return nil
}

// Task is one thread as the transition sees it.
type Task struct {
	PID   int    `json:"pid"`
	TID   int    `json:"tid"`
	Comm  string `json:"comm"`
	State State  `json:"patch_state"`
	// Kernel marks kernel threads, which signals cannot help.
	Kernel bool `json:"kernel_thread,omitempty"`
	// Stack is the task's kernel stack (/proc/<pid>/task/<tid>/stack),
	// one frame per entry, filled for blockers only.
	Stack []string `json:"stack,omitempty"`
}

// BlockingFrame guesses the frame that keeps the task from switching: the
// first frame that is not a scheduler, sleep, wait or lock primitive.
func (t Task) BlockingFrame() string {
	for _, f := range t.Stack {
		fn := frameFunc(f)
		if fn == "" || isSleepFrame(fn) {
			continue
		}
		return fn
	}
	return ""
}

// frameFunc extracts "busymod_work_func" from
// "[<0>] busymod_work_func+0x1c/0x60 [test_klp_callbacks_busy]".
func frameFunc(frame string) string {
	f := strings.TrimSpace(frame)
	if i := strings.Index(f, "] "); i >= 0 && strings.HasPrefix(f, "[<") {
		f = f[i+2:]
	}
	if i := strings.IndexAny(f, "+ "); i >= 0 {
		f = f[:i]
	}
	return f
}

var sleepPrefixes = []string{
	"__schedule", "schedule", "preempt_schedule", "io_schedule", "msleep", "usleep",
	"ssleep", "do_nanosleep", "hrtimer_nanosleep", "wait_", "__wait", "do_wait",
	"__x64_sys_", "do_syscall_64", "entry_SYSCALL", "kthread", "ret_from_fork",
	"worker_thread", "process_one_work", "smpboot_thread_fn", "rescuer_thread",
	"mutex_lock", "__mutex_lock", "down", "rwsem_", "__down", "do_sys_poll",
	"do_select", "poll_schedule", "ep_poll", "do_epoll_wait", "futex_", "__futex",
	"do_futex", "pipe_read", "pipe_write",
}

func isSleepFrame(fn string) bool {
	for _, p := range sleepPrefixes {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// taskScan is one pass over /proc/*/task/*/patch_state.
type taskScan struct {
	Total    int
	Switched int
	// Pending are the tasks whose state differs from the target.
	Pending []Task
	// Undefined counts tasks in state -1 (no transition under way).
	Undefined int
}

// scanTasks reads every task's patch state and counts those at target.
// Tasks that exit during the scan are skipped.
func (s System) scanTasks(target State) taskScan {
	var sc taskScan
	procs, err := os.ReadDir(s.path("proc"))
	if err != nil {
		return sc
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		tasks, err := os.ReadDir(s.path("proc", p.Name(), "task"))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			v, err := s.readTrim("proc", p.Name(), "task", t.Name(), "patch_state")
			if err != nil {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			st := State(n)
			sc.Total++
			switch st {
			case target:
				sc.Switched++
			case Undefined:
				sc.Undefined++
			default:
				sc.Pending = append(sc.Pending, Task{PID: pid, TID: tid, State: st})
			}
		}
	}
	return sc
}

// describeTasks fills comm, kernel-thread flag and kernel stack of tasks.
func (s System) describeTasks(ts []Task) []Task {
	out := make([]Task, 0, len(ts))
	for _, t := range ts {
		pid, tid := strconv.Itoa(t.PID), strconv.Itoa(t.TID)
		if comm, err := s.readTrim("proc", pid, "task", tid, "comm"); err == nil {
			t.Comm = comm
		}
		t.Kernel = s.isKernelThread(pid, tid)
		if st, err := os.ReadFile(s.path("proc", pid, "task", tid, "stack")); err == nil {
			for _, l := range strings.Split(strings.TrimRight(string(st), "\n"), "\n") {
				if l != "" {
					t.Stack = append(t.Stack, l)
				}
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out
}

// pfKthread is PF_KTHREAD in /proc/<pid>/stat's flags field.
const pfKthread = 0x00200000

func (s System) isKernelThread(pid, tid string) bool {
	stat, err := s.readTrim("proc", pid, "task", tid, "stat")
	if err != nil {
		return false
	}
	// The comm field is parenthesised and may hold spaces: count fields
	// after its closing parenthesis (state is the first, flags the 7th).
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfKthread != 0
}
