package buildroot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is one target kernel's files in a build root, as host paths.
type Kernel struct {
	Release    string // e.g. 6.12.57+deb13-amd64
	Version    string // Debian version of its image, headers and source packages
	Image      string // <root>/boot/vmlinuz-<release>
	Config     string // <root>/boot/config-<release>
	ModulesDir string // <root>/lib/modules/<release> (with modules.dep)
	Headers    string // <root>/usr/src/linux-headers-<release>
	SourceTar  string // <root>/usr/src/linux-source-<major.minor>.tar.xz
}

// Kernel returns the files of release in the root, installing them the
// first time: linux-image-<release>, linux-headers-<release> and
// linux-source-<major.minor> of the image's Debian version, installed with
// apt inside the root (never on the host). Source and
// headers are always of the image's version; another version installed
// since is replaced.
func (r *Root) Kernel(ctx context.Context, release string, step func(string)) (*Kernel, error) {
	if step == nil {
		step = func(string) {}
	}
	mm := majorMinor(release)
	k := r.Files(release)
	marker := filepath.Join(r.Dir, "var", "lib", "kelp", "kernel-"+release)
	if k.ready(marker) {
		return k, nil
	}
	unlock, err := lock(r.Dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if k.ready(marker) {
		return k, nil
	}
	os.Remove(marker)
	image := "linux-image-" + release
	step(fmt.Sprintf("installing %s, linux-headers-%s and linux-source-%s into the build root %s", image, release, mm, r.Dir))
	if err := copyResolvConf(r.Dir); err != nil {
		return nil, err
	}
	if _, err := r.Run(ctx, "/", "apt-get", "update", "-qq"); err != nil {
		return nil, fmt.Errorf("build root %s: %w", r.Dir, err)
	}
	out, err := r.Run(ctx, "/", "apt-cache", "show", "--no-all-versions", image)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %s is not in Debian %s (%s)", release, image, r.Suite, firstLine(out))
	}
	k.Version = field(out, "Version")
	if k.Version == "" {
		return nil, fmt.Errorf("kernel %s: no version of %s in Debian %s", release, image, r.Suite)
	}
	// The headers package depends on the image: apt installs it into
	// the root too, where its boot hooks find nothing to do.
	apt := []string{"install", "-y", "-qq", "--no-install-recommends", "--allow-downgrades",
		image + "=" + k.Version, "linux-headers-" + release + "=" + k.Version, "linux-source-" + mm + "=" + k.Version}
	if _, err := r.Run(ctx, "/", "apt-get", apt...); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", release, err)
	}
	if !k.ready("") {
		return nil, fmt.Errorf("kernel %s: the build root %s lacks its files after installing them", release, r.Dir)
	}
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(marker, []byte(k.Version+"\n"), 0o644); err != nil {
		return nil, err
	}
	return k, nil
}

// Files names where the files of release are in the root, installed or
// not.
func (r *Root) Files(release string) *Kernel {
	return &Kernel{
		Release:    release,
		Image:      filepath.Join(r.Dir, "boot", "vmlinuz-"+release),
		Config:     filepath.Join(r.Dir, "boot", "config-"+release),
		ModulesDir: filepath.Join(r.Dir, "lib", "modules", release),
		Headers:    filepath.Join(r.Dir, "usr", "src", "linux-headers-"+release),
		SourceTar:  filepath.Join(r.Dir, "usr", "src", "linux-source-"+majorMinor(release)+".tar.xz"),
	}
}

// ready tells whether the kernel's files are all there and, when marker
// is given, the source and headers packages still have the version the
// marker recorded for the image.
func (k *Kernel) ready(marker string) bool {
	for _, p := range []string{k.Image, k.Config, filepath.Join(k.ModulesDir, "modules.dep"), filepath.Join(k.Headers, "Makefile"), k.SourceTar} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	if marker == "" {
		return true
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		return false
	}
	want := strings.TrimSpace(string(b))
	root := strings.TrimSuffix(k.Image, filepath.Join("boot", "vmlinuz-"+k.Release))
	for _, pkg := range []string{"linux-source-" + majorMinor(k.Release), "linux-headers-" + k.Release} {
		if v, _ := pkgVersion(root, pkg); v != want {
			return false
		}
	}
	k.Version = want
	return true
}

// pkgVersion is the version of pkg installed in the root's dpkg database.
func pkgVersion(root, pkg string) (string, error) {
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var", "lib", "dpkg"), "-W", "-f", "${Version}", pkg).Output()
	return strings.TrimSpace(string(out)), err
}

func copyResolvConf(root string) error {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil // no resolver configuration to share (a mirror given by address)
	}
	dst := filepath.Join(root, "etc", "resolv.conf")
	os.Remove(dst)
	return os.WriteFile(dst, data, 0o644)
}

func field(stanza, name string) string {
	for _, l := range strings.Split(stanza, "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func majorMinor(release string) string {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return release
	}
	return parts[0] + "." + parts[1]
}
