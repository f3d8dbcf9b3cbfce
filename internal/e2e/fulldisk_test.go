package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
)

// TestFullDisk: installing or signing a patch on a full filesystem ends
// with one line naming what and why, and leaves the store and the module
// file exactly as they were.
func TestFullDisk(t *testing.T) {
	k := testenv.RequireKernel(t)
	ko, err := k.SampleLivepatch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	runHost(t, "openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "3650", "-batch", "-x509",
		"-newkey", "rsa:2048", "-subj", "/CN=kelp full disk test", "-keyout", key, "-out", cert)
	// A small filesystem for the store that one install fits into and a
	// second does not, and a full one holding a module to sign in place.
	fill := "dd if=/dev/zero of=/mnt/%s/fill bs=4k 2>/dev/null; sync; "
	res := vmtest.RunT(t, vmtest.Config{
		Kernel: k,
		Files: []vmtest.File{
			{Path: "/root/p.ko", Host: ko},
			{Path: "/root/key.pem", Host: key},
			{Path: "/root/cert.pem", Host: cert},
		},
		Steps: []vmtest.Step{
			{Name: "setup", Shell: "mkdir -p /mnt/store /mnt/sign && mount -t tmpfs -o size=600k tmpfs /mnt/store && mount -t tmpfs -o size=400k tmpfs /mnt/sign && cp /root/p.ko /mnt/sign/p.ko && " +
				strings.ReplaceAll(fill, "%s", "sign") + "md5sum /mnt/sign/p.ko"},
			{Name: "first", Shell: "KELP_STORE_DIR=/mnt/store kelp install /root/p.ko"},
			{Name: "store-before", Shell: strings.ReplaceAll(fill, "%s", "store") + "find /mnt/store -type f | sort | grep -v fill | xargs md5sum"},
			{Name: "second", Shell: "KELP_STORE_DIR=/mnt/store kelp install --force /root/p.ko"},
			{Name: "store-after", Shell: "find /mnt/store -type f | sort | grep -v fill | xargs md5sum; ls -a /mnt/store/*/patches"},
			{Name: "sign", Shell: "kelp sign --key /root/key.pem --cert /root/cert.pem /mnt/sign/p.ko"},
			{Name: "sign-after", Shell: "md5sum /mnt/sign/p.ko; ls -a /mnt/sign"},
		},
	})
	res.MustStep(t, "setup")
	res.MustStep(t, "first")
	before := res.MustStep(t, "store-before").Stdout
	for _, c := range []struct{ step, want string }{
		{"second", "no space left on device"},
		{"sign", "no space left on device"},
	} {
		s, _ := res.Step(c.step)
		lines := strings.Split(strings.TrimSpace(s.Stderr), "\n")
		if s.Exit != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s on a full disk: exit %d, stderr %q; want exit 1 and one line naming %q", c.step, s.Exit, s.Stderr, c.want)
		}
	}
	after := res.MustStep(t, "store-after").Stdout
	if !strings.HasPrefix(after, before) || strings.Contains(after, ".tmp") {
		t.Errorf("store changed by a failed install:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	signBefore := strings.Fields(res.MustStep(t, "setup").Stdout)[0]
	signAfter := res.MustStep(t, "sign-after").Stdout
	if !strings.HasPrefix(signAfter, signBefore) || strings.Contains(signAfter, ".tmp") {
		t.Errorf("module changed by a failed sign: before %s, after:\n%s", signBefore, signAfter)
	}
}

func runHost(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
