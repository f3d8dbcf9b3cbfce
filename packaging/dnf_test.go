package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestDnfPicksOneKernel: an rpm repository holding one fix for two
// kernels and kelp itself, as a fleet serves it. dnf finds each kernel's
// package by the release in its name (what a host installs is
// kelp-patch-NAME-$(uname -r), NAME with - for _), and what installing it needs resolves to
// kelp alone: no kernel package, whatever the host runs.
func TestDnfPicksOneKernel(t *testing.T) {
	tool(t, "rpm", "rpm")
	tool(t, "dnf", "dnf")
	tool(t, "createrepo_c", "createrepo-c")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	kelp, err := BuildSelf(SelfOptions{Format: "rpm", Binary: self, Helper: self, Version: "1.2.3", Root: t.TempDir()}, repo)
	if err != nil {
		t.Fatal(err)
	}
	kernels := []string{"6.1.0-57-amd64", "6.1.0-57-cloud-amd64"}
	for _, k := range kernels {
		ko := testenv.FakeModule(t, "fix_cve", k, true)
		if _, err := BuildPatch(PatchOptions{Module: ko, Format: "rpm", Version: "1", KelpVersion: "1.2.3"}, repo); err != nil {
			t.Fatal(err)
		}
	}
	out(t, "createrepo_c", "-q", repo)
	base := t.TempDir()
	repos := filepath.Join(base, "repos")
	if err := os.MkdirAll(repos, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "[kelp]\nname=kelp patches\nbaseurl=file://" + repo + "\ngpgcheck=0\nenabled=1\n"
	if err := os.WriteFile(filepath.Join(repos, "kelp.repo"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	dnf := func(args ...string) []string {
		t.Helper()
		all := append([]string{"-q", "--installroot", filepath.Join(base, "root"), "--setopt=reposdir=" + repos,
			"--setopt=cachedir=" + filepath.Join(base, "cache"), "--releasever=1", "--disablerepo=*", "--enablerepo=kelp"}, args...)
		var lines []string
		for _, l := range strings.Split(out(t, "dnf", all...), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		slices.Sort(lines)
		return lines
	}
	names := dnf("repoquery", "--qf", "%{name}", "kelp*")
	want := []string{"kelp", "kelp-patch-fix-cve-6.1.0-57-amd64", "kelp-patch-fix-cve-6.1.0-57-cloud-amd64"}
	if !slices.Equal(names, want) {
		t.Errorf("packages in the repository: %q, want %q", names, want)
	}
	for _, k := range kernels {
		pkg := "kelp-patch-fix-cve-" + k // the module name with - for _
		files := dnf("repoquery", "-l", pkg)
		if !slices.Contains(files, "/usr/lib/kelp/patches/"+k+"/fix_cve.ko") || len(files) != 1 {
			t.Errorf("%s ships %q, want its kernel's module only", pkg, files)
		}
		for _, r := range dnf("repoquery", "--requires", pkg) {
			if strings.Contains(r, "kernel") || strings.Contains(r, "linux-image") {
				t.Errorf("%s requires %q", pkg, r)
			}
		}
		needs := dnf("repoquery", "--requires", "--resolve", "--qf", "%{name}", pkg)
		if !slices.Equal(needs, []string{"kelp"}) {
			t.Errorf("installing %s needs %q from the repository, want kelp alone", pkg, needs)
		}
	}
	if !strings.HasSuffix(kelp.File, ".rpm") {
		t.Errorf("kelp's package %s", kelp.File)
	}
}
