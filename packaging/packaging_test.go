package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

const rel = "6.1.0-56-amd64"

func tool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: name, Package: pkg})
	}
}

func out(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, b)
	}
	return string(b)
}

func TestPatchDeb(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	ko := testenv.FakeModule(t, "fix_cve", rel, true)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	p, err := BuildPatch(PatchOptions{Module: ko, Format: "deb", Maintainer: "Ops <ops@example.org>"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "kelp-patch-fix-cve-"+rel || filepath.Ext(p.File) != ".deb" {
		t.Errorf("package %+v", p)
	}
	info := out(t, "dpkg-deb", "-I", p.File)
	for _, want := range []string{"Package: kelp-patch-fix-cve-" + rel, "Depends: linux-image-" + rel + ", kelp", "Version: 1.0.0-1", "Maintainer: Ops <ops@example.org>"} {
		if !strings.Contains(info, want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	list := out(t, "dpkg-deb", "-c", p.File)
	if !strings.Contains(list, "./usr/lib/kelp/patches/"+rel+"/fix_cve.ko") || !strings.Contains(list, "2023-11-14") {
		t.Errorf("contents (path, SOURCE_DATE_EPOCH date):\n%s", list)
	}
	dir := t.TempDir()
	out(t, "dpkg-deb", "-e", p.File, dir)
	postinst, _ := os.ReadFile(filepath.Join(dir, "postinst"))
	prerm, _ := os.ReadFile(filepath.Join(dir, "prerm"))
	for _, want := range []string{"/usr/sbin/kelp install --force -k " + rel + " /usr/lib/kelp/patches/" + rel + "/fix_cve.ko", "/usr/sbin/kelp load fix_cve"} {
		if !strings.Contains(string(postinst), want) {
			t.Errorf("postinst lacks %q:\n%s", want, postinst)
		}
	}
	for _, want := range []string{"/usr/sbin/kelp unload fix_cve", "/usr/sbin/kelp uninstall -k " + rel + " fix_cve"} {
		if !strings.Contains(string(prerm), want) {
			t.Errorf("prerm lacks %q:\n%s", want, prerm)
		}
	}
	// Scripts are valid shell.
	out(t, "sh", "-n", filepath.Join(dir, "postinst"))
	out(t, "sh", "-n", filepath.Join(dir, "prerm"))
}

func TestReproducible(t *testing.T) {
	ko := testenv.FakeModule(t, "p", rel, true)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	for _, f := range Formats {
		a, err := BuildPatch(PatchOptions{Module: ko, Format: f}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := BuildPatch(PatchOptions{Module: ko, Format: f}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		da, _ := os.ReadFile(a.File)
		db, _ := os.ReadFile(b.File)
		if !bytes.Equal(da, db) {
			t.Errorf("%s: two builds differ", f)
		}
	}
}

func TestPatchRPM(t *testing.T) {
	tool(t, "rpm", "rpm")
	ko := testenv.FakeModule(t, "fix_cve", rel, true)
	p, err := BuildPatch(PatchOptions{Module: ko, Format: "rpm", Version: "2.1"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	req := out(t, "rpm", "-qp", "--requires", p.File)
	if !strings.Contains(req, "kernel-uname-r = "+rel) || !strings.Contains(req, "kelp") {
		t.Errorf("rpm requires:\n%s", req)
	}
	files := out(t, "rpm", "-qpl", p.File)
	if !strings.Contains(files, "/usr/lib/kelp/patches/"+rel+"/fix_cve.ko") {
		t.Errorf("rpm files:\n%s", files)
	}
	scripts := out(t, "rpm", "-qp", "--scripts", p.File)
	if !strings.Contains(scripts, "kelp load fix_cve") || !strings.Contains(scripts, "kelp unload fix_cve") {
		t.Errorf("rpm scripts:\n%s", scripts)
	}
}

func TestSelfPackage(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildSelf(SelfOptions{Format: "deb", Binary: self, Version: "1.2.3"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	list := out(t, "dpkg-deb", "-c", p.File)
	for _, want := range []string{"./usr/sbin/kelp", "./lib/systemd/system/kelp.service", "./var/lib/kelp/"} {
		if !strings.Contains(list, want) {
			t.Errorf("kelp package lacks %s:\n%s", want, list)
		}
	}
	if !strings.Contains(out(t, "dpkg-deb", "-f", p.File, "Version"), "1.2.3-1") {
		t.Error("kelp package version")
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "plain", rel, false), Format: "deb"}, dir); err == nil || !strings.Contains(err.Error(), "not a livepatch module") {
		t.Errorf("plain module: %v", err)
	}
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "p", rel, true), Format: "apk"}, dir); err == nil || !strings.Contains(err.Error(), "unsupported package format") {
		t.Errorf("apk: %v", err)
	}
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "p", rel, true), Format: "deb", Name: "Bad Name"}, dir); err == nil {
		t.Error("bad package name accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refusals left files: %v", ents)
	}
}
