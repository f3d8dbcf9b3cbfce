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
	p, err := BuildPatch(PatchOptions{Module: ko, Format: "deb", Maintainer: "Ops <ops@example.org>", KelpVersion: "1.2.0-3-gabc"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "kelp-patch-fix-cve-"+rel || filepath.Ext(p.File) != ".deb" {
		t.Errorf("package %+v", p)
	}
	info := out(t, "dpkg-deb", "-I", p.File)
	if strings.Contains(info, "linux-image") {
		t.Errorf("a patch package must not pull in its kernel's package:\n%s", info)
	}
	for _, want := range []string{"Package: kelp-patch-fix-cve-" + rel, "Depends: kelp (>= 1.2.0+3+gabc)\n", "Version: 1.0.0-1", "Maintainer: Ops <ops@example.org>"} {
		if !strings.Contains(info, want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	list := out(t, "dpkg-deb", "-c", p.File)
	if !strings.Contains(list, "./usr/lib/kelp/patches/"+rel+"/fix_cve.ko") || !strings.Contains(list, "2023-11-14") {
		t.Errorf("contents (path, SOURCE_DATE_EPOCH date):\n%s", list)
	}
	for _, want := range []string{"./usr/share/doc/" + p.Name + "/copyright", "./usr/share/doc/" + p.Name + "/changelog.Debian.gz"} {
		if !strings.Contains(list, want) {
			t.Errorf("contents lack %s:\n%s", want, list)
		}
	}
	dir := t.TempDir()
	out(t, "dpkg-deb", "-e", p.File, dir)
	postinst, err := os.ReadFile(filepath.Join(dir, "postinst"))
	if err != nil {
		t.Fatal(err)
	}
	prerm, err := os.ReadFile(filepath.Join(dir, "prerm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kelp install --force --keep-quarantine -k " + rel + " /usr/lib/kelp/patches/" + rel + "/fix_cve.ko", "kelp load --skip-quarantined fix_cve"} {
		if !strings.Contains(string(postinst), want) {
			t.Errorf("postinst lacks %q:\n%s", want, postinst)
		}
	}
	for _, want := range []string{"kelp unload fix_cve", "kelp uninstall -k " + rel + " fix_cve"} {
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
		a, err := BuildPatch(PatchOptions{Module: ko, Format: f, KelpVersion: "1.0.0"}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := BuildPatch(PatchOptions{Module: ko, Format: f, KelpVersion: "1.0.0"}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		da, err := os.ReadFile(a.File)
		if err != nil {
			t.Fatal(err)
		}
		db, err := os.ReadFile(b.File)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("%s: two builds differ", f)
		}
	}
}

func TestPatchRPM(t *testing.T) {
	tool(t, "rpm", "rpm")
	ko := testenv.FakeModule(t, "fix_cve", rel, true)
	p, err := BuildPatch(PatchOptions{Module: ko, Format: "rpm", Version: "2.1", KelpVersion: "dev"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	req := out(t, "rpm", "-qp", "--requires", p.File)
	if strings.Contains(req, "kernel") || !strings.Contains(req, "kelp >= 0.0.0~dev") {
		t.Errorf("rpm requires:\n%s", req)
	}
	files := out(t, "rpm", "-qpl", p.File)
	if !strings.Contains(files, "/usr/lib/kelp/patches/"+rel+"/fix_cve.ko") {
		t.Errorf("rpm files:\n%s", files)
	}
	scripts := out(t, "rpm", "-qp", "--scripts", p.File)
	if !strings.Contains(scripts, "kelp load --skip-quarantined fix_cve") || !strings.Contains(scripts, "kelp unload fix_cve") {
		t.Errorf("rpm scripts:\n%s", scripts)
	}
}

func TestSelfPackage(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/share/man/man8"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/bash-completion/completions"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "usr/share/man/man8/kelp.8"), []byte(".TH KELP 8\n.SH NAME\nkelp \\- live patching\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/share/bash-completion/completions/kelp"), []byte("complete -F _kelp kelp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := BuildSelf(SelfOptions{Format: "deb", Binary: self, Helper: self, Version: "1.2.3", Root: root}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	list := out(t, "dpkg-deb", "-c", p.File)
	for _, want := range []string{"./usr/sbin/kelp", "./usr/libexec/kelp/kelp-package", "./lib/systemd/system/kelp.service", "./var/lib/kelp/",
		"./usr/share/man/man8/kelp.8.gz", "./usr/share/bash-completion/completions/kelp", "./usr/share/doc/kelp/copyright", "./usr/share/doc/kelp/changelog.Debian.gz"} {
		if !strings.Contains(list, want) {
			t.Errorf("kelp package lacks %s:\n%s", want, list)
		}
	}
	if !strings.Contains(out(t, "dpkg-deb", "-f", p.File, "Version"), "1.2.3-1") {
		t.Error("kelp package version")
	}
	if strings.Contains(list, "kelp.8\n") || strings.Contains(list, "kelp.8 ") {
		t.Errorf("an uncompressed man page is shipped:\n%s", list)
	}
	// Enabled on the first installation only; an admin's disable is kept.
	dir := t.TempDir()
	out(t, "dpkg-deb", "-e", p.File, dir)
	postinst, err := os.ReadFile(filepath.Join(dir, "postinst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"deb-systemd-helper --quiet was-enabled kelp.service", "deb-systemd-helper enable kelp.service", "deb-systemd-helper update-state kelp.service"} {
		if !strings.Contains(string(postinst), want) {
			t.Errorf("postinst lacks %q:\n%s", want, postinst)
		}
	}
	if strings.Contains(string(postinst), "systemctl enable") {
		t.Errorf("postinst enables the service unconditionally:\n%s", postinst)
	}
	for _, f := range []string{"postinst", "prerm", "postrm"} {
		out(t, "sh", "-n", filepath.Join(dir, f))
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "plain", rel, false), Format: "deb", KelpVersion: "1"}, dir); err == nil || !strings.Contains(err.Error(), "not a livepatch module") {
		t.Errorf("plain module: %v", err)
	}
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "p", rel, true), Format: "deb"}, dir); err == nil || !strings.Contains(err.Error(), "version of kelp") {
		t.Errorf("no kelp version: %v", err)
	}
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "p", rel, true), Format: "apk"}, dir); err == nil || !strings.Contains(err.Error(), "unsupported package format") {
		t.Errorf("apk: %v", err)
	}
	if _, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "p", rel, true), Format: "deb", Name: "Bad Name", KelpVersion: "1"}, dir); err == nil {
		t.Error("bad package name accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refusals left files: %v", ents)
	}
}

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3":              "1.2.3",
		"v1.2.3":             "1.2.3",
		"1.2.0-3-gabc":       "1.2.0+3+gabc",
		"1.2.0-3-gabc-dirty": "1.2.0+3+gabc+dirty",
		"dev":                "0.0.0~dev",
		"":                   "0.0.0~dev",
		"0.1.0~git1a2b3c":    "0.1.0~git1a2b3c",
	} {
		if got := PackageVersion(in); got != want {
			t.Errorf("PackageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPatchDebSaysWhatItFixes: the package's description carries what the
// module says it fixes (its description's first line and its CVE ids), so
// `apt-cache search CVE-…` finds it; a module that says nothing gets the
// plain description.
func TestPatchDebSaysWhatItFixes(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	ko := testenv.FakeModule(t, "fix_nft", rel, true,
		"kelp.description=netfilter: nf_tables: reject bad verdicts\nlonger text", "kelp.cve=CVE-2024-1086", "kelp.cve=CVE-2099-20002")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	p, err := BuildPatch(PatchOptions{Module: ko, Format: "deb", KelpVersion: "1.0.0"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	desc := out(t, "dpkg-deb", "-f", p.File, "Description")
	flat := strings.Join(strings.Fields(desc), " ")
	for _, want := range []string{"netfilter: nf_tables: reject bad verdicts. The livepatch module fix_nft", "Fixes CVE-2024-1086, CVE-2099-20002."} {
		if !strings.Contains(flat, want) {
			t.Errorf("description lacks %q:\n%s", want, desc)
		}
	}
	if strings.Contains(desc, "longer text") {
		t.Errorf("description carries more than the first line of the module's:\n%s", desc)
	}
	plain, err := BuildPatch(PatchOptions{Module: testenv.FakeModule(t, "fix_plain", rel, true), Format: "deb", KelpVersion: "1.0.0"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d := out(t, "dpkg-deb", "-f", plain.File, "Description"); strings.Contains(d, "Fixes") {
		t.Errorf("a module that names no CVE: %s", d)
	}
}
