package selftests

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/modsign"
)

// TestSignatureEnforced boots with module.sig_enforce=1: kelp refuses an
// unsigned patch before loading it, and reports the kernel's refusal of a
// patch signed with a key the kernel does not trust (exit 2).
func TestSignatureEnforced(t *testing.T) {
	b := modules(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x4b454c50),
		Subject:      pkix.Name{CommonName: "kelp test key"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := os.ReadFile(b.ko[lp])
	if err != nil {
		t.Fatal(err)
	}
	signed, err := modsign.Sign(unsigned, key, cert, 0)
	if err != nil {
		t.Fatal(err)
	}
	checks := []check{
		{"check", "kelp check", func(t *testing.T, r vmtest.StepResult) {
			if !strings.Contains(r.Stdout, "module_sig_enforce") || !strings.Contains(r.Stdout, "enforced: only modules signed with a trusted key") {
				t.Errorf("kelp check does not report enforcement:\n%s", r.Stdout)
			}
		}},
		{"unsigned", "kelp load " + guestKO + "/" + lp + ".ko", refused(lp + " is not signed, and this kernel only loads signed modules (module.sig_enforce=1)")},
		{"info signed", "kelp info /root/signed.ko", func(t *testing.T, r vmtest.StepResult) {
			for _, w := range []string{"signature:   PKCS#7", "signer:      kelp test key", "key id:      4B:45:4C:50", "hash:        sha256"} {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("kelp info lacks %q:\n%s", w, r.Stdout)
				}
			}
		}},
		{"untrusted key", "kelp load /root/signed.ko", func(t *testing.T, r vmtest.StepResult) {
			wantExit(2, lp+": kernel refused to load the module: key was rejected by service (EKEYREJECTED); the kernel does not trust the module's signature (signer kelp test key)")(t, r)
			t.Logf("kelp load of a patch signed with an untrusted key:\n%s", r.Stderr)
		}},
		{"nothing loaded", clean, wantExit(0)},
	}
	var steps []vmtest.Step
	for _, c := range checks {
		steps = append(steps, vmtest.Step{Name: c.name, Shell: c.shell, Timeout: time.Minute})
	}
	res := vmtest.RunT(t, vmtest.Config{
		Kernel:  b.kernel,
		Cmdline: []string{"module.sig_enforce=1"},
		Files:   append(b.files(), vmtest.File{Path: "/root/signed.ko", Data: signed}),
		Steps:   steps,
	})
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r, ok := res.Step(c.name)
			if !ok {
				t.Fatal("step did not run")
			}
			c.test(t, r)
		})
	}
}
