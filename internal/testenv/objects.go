package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/ktree"
)

// ObjectFlags are the flags kelp adds to the kernel's own when it compiles
// objects to diff: one section per function and per data object.
const ObjectFlags = "-ffunction-sections -fdata-sections"

// KernelObject is one object compiled from the test kernel's source tree.
type KernelObject struct {
	Name   string // path in the tree, e.g. "fs/ext4/inode.o"
	Path   string // the compiled object, in the test cache
	Module bool   // compiled as part of a module (-DMODULE)
}

// objectSet lists, per directory, the objects of KernelObjectSet: every
// object the Debian 6.1 config builds in the directory, up to a cap per
// directory, in Makefile order.
var objectSet = []struct{ dir, names string }{
	{"kernel", `
		fork exec_domain panic cpu exit softirq resource sysctl capability ptrace
		user signal sys umh workqueue pid task_work extable params kthread sys_ni
		nsproxy notifier ksysfs cred reboot async range smpboot ucount regset kmod
		groups kcmp freezer profile stacktrace dma smp uid16 module_signature
		kallsyms acct crash_core kexec_core kexec kexec_file compat utsname
		user_namespace pid_namespace stop_machine audit auditfilter auditsc
		audit_watch audit_fsnotify audit_tree kprobes hung_task watchdog
		watchdog_hld seccomp relay utsname_sysctl delayacct taskstats tsacct
		tracepoint irq_work static_call static_call_inline numa
		user-return-notifier padata crash_dump jump_label context_tracking iomem
		rseq`},
	{"kernel/sched", `
		core fair build_policy build_utility`},
	{"kernel/livepatch", `
		core patch shadow state transition`},
	{"kernel/time", `
		time timer hrtimer timekeeping ntp clocksource jiffies timer_list timeconv
		timecounter`},
	{"mm", `
		filemap mempool oom_kill fadvise maccess page-writeback folio-compat
		readahead swap truncate vmscan shmem util mmzone vmstat backing-dev mm_init
		percpu slab_common compaction interval_tree list_lru workingset debug gup
		mmap_lock highmem memory mincore mlock mmap mmu_gather mprotect mremap
		msync page_vma_mapped pagewalk pgtable-generic rmap vmalloc
		process_vm_access page_alloc shuffle init-mm memblock memory_hotplug
		madvise page_io swap_state swapfile swap_slots frontswap zswap dmapool
		hugetlb hugetlb_vmemmap mempolicy sparse sparse-vmemmap mmu_notifier
		hwpoison-inject zsmalloc`},
	{"fs", `
		open read_write file_table super char_dev stat exec pipe namei fcntl ioctl
		readdir select dcache inode attr bad_inode file filesystems namespace
		seq_file xattr libfs fs-writeback pnode splice sync utimes d_path stack
		binfmt_misc mbcache`},
	{"fs/proc", `
		task_mmu inode root base generic array fd proc_tty cmdline consoles cpuinfo
		devices interrupts loadavg meminfo stat uptime util version softirqs
		namespaces self thread_self proc_sysctl proc_net kcore vmcore kmsg page`},
	{"fs/ext4", `
		balloc bitmap block_validity dir ext4_jbd2 extents extents_status file
		fsmap fsync hash ialloc indirect inline inode ioctl mballoc migrate mmp
		move_extent namei page-io readpage resize super symlink sysfs xattr
		xattr_hurd xattr_trusted xattr_user fast_commit orphan acl xattr_security
		verity crypto`},
	{"net/core", `
		sock request_sock skbuff datagram stream scm gen_stats gen_estimator
		net_namespace secure_seq flow_dissector sysctl_net_core dev dev_addr_lists
		dst netevent neighbour rtnetlink utils link_watch filter sock_diag
		dev_ioctl tso sock_reuseport fib_notifier xdp flow_offload gro net-sysfs
		pktgen drop_monitor selftests failover`},
	{"net/ipv4", `
		route inetpeer protocol ip_input ip_fragment ip_forward ip_options
		ip_output ip_sockglue inet_hashtables inet_timewait_sock
		inet_connection_sock tcp tcp_input tcp_output tcp_timer tcp_ipv4
		tcp_minisocks tcp_cong tcp_metrics tcp_fastopen tcp_rate tcp_recovery
		tcp_ulp tcp_offload datagram raw udp udplite udp_offload arp icmp devinet
		af_inet igmp fib_frontend fib_semantics fib_trie fib_notifier inet_fragment
		ip_tunnel ipip fou_core fou_nl gre_demux ip_gre udp_tunnel_core
		udp_tunnel_nic ip_vti ah4`},
	{"block", `
		bdev fops bio elevator blk-core blk-sysfs blk-flush blk-settings blk-ioc
		blk-map blk-merge blk-timeout blk-lib blk-mq blk-mq-tag blk-stat
		blk-mq-sysfs blk-mq-cpumap blk-mq-sched ioctl genhd ioprio badblocks
		blk-rq-qos disk-events blk-ia-ranges bsg bsg-lib blk-cgroup
		blk-cgroup-rwstat kyber-iosched bfq-iosched bfq-wf2q bfq-cgroup`},
	{"drivers/block", `
		floppy brd loop nbd virtio_blk xen-blkfront rbd`},
	{"drivers/block/null_blk", `
		main trace zoned`},
	{"security", `
		commoncap min_addr security inode lsm_audit device_cgroup`},
	{"security/selinux", `
		avc hooks selinuxfs netlink nlmsgtab netif netnode netport status xfrm
		netlabel ima`},
}

// KernelObjectSet returns the objects (paths in the kernel tree) that
// stand for "real kernel code" in tests: 405 objects over kernel/, mm/,
// fs/ (with fs/proc and the ext4 module), net/core, net/ipv4, block/,
// drivers/block (modules) and security/; with the Debian config 69 of them
// are module objects.
func KernelObjectSet() []string {
	var out []string
	for _, d := range objectSet {
		for _, n := range strings.Fields(d.names) {
			out = append(out, d.dir+"/"+n+".o")
		}
	}
	return out
}

// Objects returns the named objects (paths in the kernel tree, e.g.
// "kernel/sched/core.o") compiled from k's source tree by kbuild with
// ObjectFlags, in the order given. Compiled objects are cached per tree,
// compiler and flags; the missing ones are built in one parallel kbuild
// run, serialized with other test processes on the tree's lock.
func (k *Kernel) Objects(ctx context.Context, names []string) ([]KernelObject, error) {
	for _, n := range names {
		if !strings.HasSuffix(n, ".o") || path.Clean(n) != n || path.IsAbs(n) || strings.HasPrefix(n, "../") {
			return nil, fmt.Errorf("kernel object %q: want a clean relative path ending in .o", n)
		}
	}
	tree, err := k.SourceTree(ctx)
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	ccKey, err := FileKey(compilerPath())
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	dir := filepath.Join(cache, "objects", filepath.Base(tree)+"-"+Digest(ccKey, ObjectFlags))
	if missing := missingObjects(dir, names); len(missing) > 0 {
		if err := compileObjects(ctx, tree, dir, names); err != nil {
			return nil, err
		}
	}
	out := make([]KernelObject, len(names))
	for i, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		_, err := os.Stat(p + ".module")
		out[i] = KernelObject{Name: n, Path: p, Module: err == nil}
	}
	return out, nil
}

func compilerPath() string {
	if p, err := filepath.EvalSymlinks("/usr/bin/gcc"); err == nil {
		return p
	}
	return "/usr/bin/gcc"
}

func missingObjects(dir string, names []string) []string {
	var out []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(n))); err != nil {
			out = append(out, n)
		}
	}
	return out
}

// compileObjects builds the objects of names missing from dir in tree
// and copies them to dir. kbuild builds in the tree itself (a prepared
// tree cannot serve an O= build), so the tree's lock keeps two test
// processes from rebuilding the same object with different flags under
// each other.
func compileObjects(ctx context.Context, tree, dir string, names []string) error {
	lock, err := os.OpenFile(tree+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := sys.Lock(lock); err != nil {
		return err
	}
	defer sys.Unlock(lock)
	missing := missingObjects(dir, names)
	if len(missing) == 0 {
		return nil
	}
	args := append([]string{"-s", "-j" + strconv.Itoa(runtime.NumCPU()), "KCFLAGS=" + ObjectFlags}, ktree.KeptTools...)
	if err := run(ctx, tree, "make", append(args, missing...)...); err != nil {
		return fmt.Errorf("compile %d kernel objects: %w", len(missing), err)
	}
	for _, n := range missing {
		if err := cacheObject(tree, dir, n); err != nil {
			return err
		}
	}
	return nil
}

// cacheObject copies one freshly built object into the cache, checking
// from kbuild's record of the command that it carries ObjectFlags. The
// object is renamed into place last, so its presence means complete.
func cacheObject(tree, dir, name string) error {
	src := filepath.Join(tree, filepath.FromSlash(name))
	cmdFile := filepath.Join(filepath.Dir(src), "."+filepath.Base(src)+".cmd")
	cmd, err := os.ReadFile(cmdFile)
	if err != nil {
		return fmt.Errorf("kernel object %s: kbuild command record: %w", name, err)
	}
	line, _, _ := strings.Cut(string(cmd), "\n")
	if !strings.Contains(line, ObjectFlags) {
		return fmt.Errorf("kernel object %s was built without %q (another build in %s?)", name, ObjectFlags, tree)
	}
	dst := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if strings.Contains(line, " -DMODULE ") {
		if err := os.WriteFile(dst+".module", nil, 0o644); err != nil {
			return err
		}
	}
	tmp := dst + ".tmp"
	if err := copyFile(src, tmp); err != nil {
		return fmt.Errorf("kernel object %s: %w", name, err)
	}
	return os.Rename(tmp, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
