package modsign

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/kmod"
)

// keyPair makes an RSA key and self-signed certificate with openssl, the
// way kernel builders make their module signing keys.
func keyPair(t *testing.T, dir, cn string) (key, certPEM, certDER string) {
	t.Helper()
	key = filepath.Join(dir, "key.pem")
	certPEM = filepath.Join(dir, "cert.pem")
	certDER = filepath.Join(dir, "cert.der")
	run(t, "openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "36500", "-batch", "-x509",
		"-newkey", "rsa:2048", "-subj", "/CN="+cn, "-keyout", key, "-out", certPEM)
	run(t, "openssl", "x509", "-in", certPEM, "-outform", "DER", "-out", certDER)
	return
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// signatureValue extracts the signer's signature bytes from a signed
// module's PKCS#7 block.
func signatureValue(t *testing.T, signed []byte) []byte {
	t.Helper()
	m, err := kmod.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	der := signed[m.ELFSize : m.ELFSize+int64(m.Signature.Size)]
	var ci struct {
		OID     asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.UnmarshalWithParams(der, &ci, ""); err != nil {
		t.Fatalf("content info: %v", err)
	}
	var sd struct {
		Version     int
		Digests     asn1.RawValue
		Content     asn1.RawValue
		SignerInfos []struct {
			Version   int
			SID       asn1.RawValue
			Digest    asn1.RawValue
			SigAlg    asn1.RawValue
			Signature []byte
		} `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatalf("signed data: %v", err)
	}
	return sd.SignerInfos[0].Signature
}

// TestSignMatchesKernelTool signs a Debian module with kelp and with the
// kernel's own scripts/sign-file: the same key gives the same signature,
// kmod reads the signer back, and openssl verifies the detached signature.
func TestSignMatchesKernelTool(t *testing.T) {
	k := testenv.RequireKernel(t)
	signFile := "/usr/lib/linux-kbuild-6.1/scripts/sign-file"
	if _, err := os.Stat(signFile); err != nil {
		testenv.Missing(t, &testenv.ErrMissing{What: signFile, Package: "linux-kbuild-6.1"})
	}
	dir := t.TempDir()
	key, certPEM, certDER := keyPair(t, dir, "kelp test signing key")
	orig, err := os.ReadFile(filepath.Join(k.ModulesDir, "kernel/fs/ext4/ext4.ko"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := kmod.Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := orig[:m.ELFSize]
	in := filepath.Join(dir, "ext4.ko")
	if err := os.WriteFile(in, unsigned, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "ref.ko")
	run(t, signFile, "sha256", key, certDER, in, ref)
	refBytes, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}

	signer, cert, err := LoadKeyPair(key, certPEM)
	if err != nil {
		t.Fatal(err)
	}
	// Signing the Debian-signed original replaces its signature.
	signed, err := Sign(orig, signer, cert, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signed[:len(unsigned)], unsigned) {
		t.Fatal("signed module does not start with the unsigned module")
	}
	if !bytes.Equal(signatureValue(t, signed), signatureValue(t, refBytes)) {
		t.Error("signature differs from scripts/sign-file's for the same key")
	}
	sm, err := kmod.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if s := sm.Signature; s.Signer != "kelp test signing key" || s.HashAlgo != "sha256" || s.KeyID == "" || s.Error != "" {
		t.Errorf("signature read back = %+v", s)
	}
	sig := filepath.Join(dir, "sig.p7")
	os.WriteFile(sig, signed[sm.ELFSize:sm.ELFSize+int64(sm.Signature.Size)], 0o644)
	run(t, "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", in,
		"-certfile", certPEM, "-nointern", "-noverify", "-out", "/dev/null")
}

func TestSignRefusals(t *testing.T) {
	dir := t.TempDir()
	key, certPEM, _ := keyPair(t, dir, "a")
	other := t.TempDir()
	_, otherCert, _ := keyPair(t, other, "b")
	signer, _, err := LoadKeyPair(key, otherCert)
	if err != nil {
		t.Fatal(err)
	}
	_, cert, _ := LoadKeyPair(key, certPEM)
	if _, err := Sign([]byte("not a module"), signer, cert, 0); err == nil {
		t.Error("signed random bytes")
	}
	_, wrong, err := LoadKeyPair(key, otherCert)
	if err != nil {
		t.Fatal(err)
	}
	k := testenv.RequireKernel(t)
	mod, err := os.ReadFile(filepath.Join(k.ModulesDir, "kernel/fs/ext4/ext4.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(mod, signer, wrong, 0); err == nil {
		t.Error("signed with a key that does not match the certificate")
	}
	if _, _, err := LoadKeyPair(certPEM, certPEM); err == nil {
		t.Error("a certificate was accepted as a private key")
	}
}
