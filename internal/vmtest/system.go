package vmtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/buildroot"
	"github.com/kelp-project/kelp/internal/sys"
	"github.com/kelp-project/kelp/internal/testenv"
)

// SystemImage is a root filesystem of the kernel's Debian release
// (bookworm for Debian 12's 6.1, trixie for Debian 13's 6.12) booted with
// systemd: minbase plus systemd, udev, kmod, apt and the test kernel's own
// image package (so /lib/modules is real and packages may depend on the
// kernel). It is built once per kernel with debootstrap and cached.
type SystemImage struct {
	Release string
	Image   string // raw ext4 root filesystem, used read-only as a backing file
	Initrd  string // the image's own Debian initramfs for the kernel
}

// systemRecipe changes whenever the image contents below change, so the
// cache key follows it (with the suite in front).
const systemRecipe = "-minbase-systemd-v3"

var systemPackages = []string{
	"systemd", "systemd-sysv", "udev", "kmod", "initramfs-tools", "linux-base",
	"procps", "e2fsprogs", "apt", "ca-certificates",
}

// systemExtras are installed with apt inside the new system (debootstrap's
// own resolver cannot configure them): the shipping docs' roll-out
// playbook runs inside the system.
var systemExtras = []string{"ansible-core", "python3-apt"}

// runnerUnit starts the test runner from the payload disk once the system
// is up (and after kelp.service, when kelp is installed).
const runnerUnit = `[Unit]
Description=kelp test runner
After=multi-user.target kelp.service
ConditionPathExists=/dev/vdb

[Service]
Type=simple
ExecStartPre=/bin/mkdir -p /kelp
ExecStartPre=/bin/mount -o ro /dev/vdb /kelp
ExecStart=/kelp/runner --runner
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`

// System returns the cached system image for k, building it when needed
// (a few minutes; needs root for debootstrap and chroot).
func System(ctx context.Context, k *testenv.Kernel) (*SystemImage, error) {
	for _, tool := range []struct{ name, pkg string }{{"debootstrap", "debootstrap"}, {"qemu-img", "qemu-utils"}, {"mkfs.ext4", "e2fsprogs"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			return nil, &testenv.ErrMissing{What: tool.name, Package: tool.pkg}
		}
	}
	suite, ok := buildroot.SuiteOf(k.Release)
	if !ok {
		return nil, fmt.Errorf("system image: kernel %s is of no Debian release kelp knows (%v)", k.Release, buildroot.Suites)
	}
	// The image package's version, from the dpkg database that holds it:
	// the host's, or the kernel's build root's.
	query := []string{"-W", "-f=${Version}", "linux-image-" + k.Release}
	if k.BuildRoot != "" {
		query = append([]string{"--admindir=" + filepath.Join(k.BuildRoot, "var", "lib", "dpkg")}, query...)
	}
	ver, err := output(ctx, "dpkg-query", query...)
	if err != nil || ver == "" {
		return nil, &testenv.ErrMissing{What: "package linux-image-" + k.Release, Package: "linux-image-" + k.Release}
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "system", k.Release+"-"+testenv.Digest(suite+systemRecipe, ver, strings.Join(systemPackages, ","), strings.Join(systemExtras, ",")))
	img := &SystemImage{Release: k.Release, Image: filepath.Join(dir, "rootfs.img"), Initrd: filepath.Join(dir, "initrd.img")}
	_, err = testenv.Cached(dir, func(dir string) error {
		if os.Geteuid() != 0 {
			return fmt.Errorf("building the Debian system image needs root (debootstrap, chroot)")
		}
		return buildSystem(ctx, k, suite, ver, dir)
	})
	if err != nil {
		return nil, fmt.Errorf("system image: %w", err)
	}
	// Images of earlier recipes or kernel versions only take space.
	stale, _ := filepath.Glob(filepath.Join(cache, "system", k.Release+"-*"))
	for _, p := range stale {
		if p != dir && p != dir+".lock" {
			sys.RemoveAll(p)
		}
	}
	return img, nil
}

func buildSystem(ctx context.Context, k *testenv.Kernel, suite, ver, dir string) error {
	mirror, err := debianMirror()
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "root")
	if err := run(ctx, dir, "debootstrap", "--variant=minbase", "--include="+strings.Join(systemPackages, ","), suite, root, mirror); err != nil {
		return err
	}
	// The kernel package of exactly the test kernel's version, from the
	// package sources of the system that has it installed: the host's, or
	// the kernel's build root's (a Debian 12 host has no Debian 13
	// sources). It may live in the security archive, which debootstrap
	// does not read.
	debs := filepath.Join(dir, "debs")
	os.MkdirAll(debs, 0o755)
	download := []string{"download", "linux-image-" + k.Release + "=" + ver}
	if k.BuildRoot == "" {
		err = run(ctx, debs, "apt-get", download...)
	} else {
		br := &buildroot.Root{Dir: k.BuildRoot, Suite: suite}
		br.Bind(debs)
		_, err = br.Run(ctx, debs, "apt-get", download...)
	}
	if err != nil {
		return err
	}
	found, _ := filepath.Glob(filepath.Join(debs, "linux-image-*.deb"))
	if len(found) != 1 {
		return fmt.Errorf("apt-get download linux-image-%s=%s: got %v", k.Release, ver, found)
	}
	if err := copyFile(found[0], filepath.Join(root, "tmp", "kernel.deb")); err != nil {
		return err
	}
	install := "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends " +
		strings.Join(systemExtras, " ") + " && dpkg -i /tmp/kernel.deb && apt-get clean"
	if err := inChroot(ctx, root, "sh", "-c", install); err != nil {
		return err
	}
	os.Remove(filepath.Join(root, "tmp", "kernel.deb"))
	os.RemoveAll(debs)

	files := map[string]string{
		"etc/fstab":    "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
		"etc/hostname": "kelp-test\n",
		"etc/hosts":    "127.0.0.1 localhost kelp-test\n",
		"etc/systemd/system/kelp-test-runner.service": runnerUnit,
		// No network in the test machine: apt works only from local files.
		"etc/apt/sources.list": "",
		// Journald keeps logs across the test's reboots.
		"var/log/journal/.keep": "",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	links := map[string]string{
		"etc/systemd/system/multi-user.target.wants/kelp-test-runner.service": "/etc/systemd/system/kelp-test-runner.service",
	}
	for _, unit := range []string{"apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer", "e2scrub_reap.service", "getty@tty1.service", "getty-static.service"} {
		links["etc/systemd/system/"+unit] = "/dev/null"
	}
	for name, target := range links {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444)
	if err := copyFile(filepath.Join(root, "boot", "initrd.img-"+k.Release), filepath.Join(dir, "initrd.img")); err != nil {
		return fmt.Errorf("the image's initramfs: %w", err)
	}
	os.RemoveAll(filepath.Join(root, "var/cache/apt/archives"))
	os.MkdirAll(filepath.Join(root, "var/cache/apt/archives/partial"), 0o755)

	size, err := dirSizeMB(root)
	if err != nil {
		return err
	}
	img := filepath.Join(dir, "rootfs.img")
	if err := run(ctx, dir, "mkfs.ext4", "-q", "-F", "-L", "kelproot", "-d", root, img, fmt.Sprintf("%dM", size+768)); err != nil {
		return err
	}
	return sys.RemoveAll(root)
}

// inChroot runs a command inside root with /proc, /sys and a /dev of its
// own mounted, in a private mount namespace: nothing stays mounted when
// it ends, and the package scripts it runs as root never see the host's
// /dev (binding it, a script that replaced /dev/null there replaced the
// host's).
func inChroot(ctx context.Context, root string, args ...string) error {
	script := `set -e
root=$1
shift
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
` + buildroot.PrivateDev + `
exec chroot "$root" "$@"
`
	return run(ctx, "/", "unshare", append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", root}, args...)...)
}

// debianMirror returns the host's Debian archive address, from its apt
// sources (deb822 or one-line format).
func debianMirror() (string, error) {
	paths, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "URIs:"); ok {
				for _, u := range strings.Fields(v) {
					if strings.HasSuffix(strings.TrimRight(u, "/"), "/debian") {
						f.Close()
						return u, nil
					}
				}
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && strings.HasSuffix(strings.TrimRight(f[1], "/"), "/debian") {
				return f[1], nil
			}
		}
	}
	return "", fmt.Errorf("no Debian archive found in the host's apt sources")
}

func dirSizeMB(dir string) (int64, error) {
	var total int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	return total >> 20, err
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.Join(lines, "\n"))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return strings.TrimSpace(string(out)), err
}
