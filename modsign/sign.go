// Package modsign appends the Linux kernel's module signature to a module:
// a detached PKCS#7 (CMS SignedData) over the module bytes, with no
// certificates and no signed attributes, the signer named by issuer and
// serial number, followed by struct module_signature and the
// "~Module signature appended~\n" trailer — the form the kernel's
// module_sig_check() verifies against its trusted keyrings.
package modsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/kelp-project/kelp/kmod"
)

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECDSA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

type algorithm struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

var null = asn1.RawValue{Tag: asn1.TagNull}

type encapContent struct {
	ContentType asn1.ObjectIdentifier
}

type issuerSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type signerInfo struct {
	Version            int
	SID                issuerSerial
	DigestAlgorithm    algorithm
	SignatureAlgorithm algorithm
	Signature          []byte
}

type signedData struct {
	Version          int
	DigestAlgorithms []algorithm `asn1:"set"`
	EncapContentInfo encapContent
	SignerInfos      []signerInfo `asn1:"set"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     signedData `asn1:"explicit,tag:0"`
}

// Sign returns module with any existing signature replaced by one made
// with signer (an RSA or ECDSA private key) for cert, over hash (SHA-256
// when zero).
func Sign(module []byte, signer crypto.Signer, cert *x509.Certificate, hash crypto.Hash) ([]byte, error) {
	if hash == 0 {
		hash = crypto.SHA256
	}
	m, err := kmod.Parse(module)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, errors.New("the key does not belong to the certificate")
	}
	body := module[:m.ELFSize]
	digestOID, err := digestOID(hash)
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(body)
	sig, err := signer.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	sigAlg, err := signatureAlgorithm(signer.Public(), hash)
	if err != nil {
		return nil, err
	}
	ci := contentInfo{
		ContentType: oidSignedData,
		Content: signedData{
			Version:          1,
			DigestAlgorithms: []algorithm{{Algorithm: digestOID, Parameters: null}},
			EncapContentInfo: encapContent{ContentType: oidData},
			SignerInfos: []signerInfo{{
				Version:            1,
				SID:                issuerSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
				DigestAlgorithm:    algorithm{Algorithm: digestOID, Parameters: null},
				SignatureAlgorithm: sigAlg,
				Signature:          sig,
			}},
		},
	}
	der, err := asn1.Marshal(ci)
	if err != nil {
		return nil, fmt.Errorf("encode PKCS#7: %w", err)
	}
	out := make([]byte, 0, len(body)+len(der)+12+len(kmod.SignatureMagic))
	out = append(out, body...)
	out = append(out, der...)
	// struct module_signature: algo, hash, id_type (2 = PKCS#7),
	// signer_len, key_id_len, 3 bytes pad, sig_len (big endian). The
	// first five are zero for PKCS#7: the signer is inside the message.
	info := make([]byte, 12)
	info[2] = 2
	binary.BigEndian.PutUint32(info[8:], uint32(len(der)))
	out = append(out, info...)
	out = append(out, kmod.SignatureMagic...)
	return out, nil
}

func digestOID(h crypto.Hash) (asn1.ObjectIdentifier, error) {
	switch h {
	case crypto.SHA256:
		return oidSHA256, nil
	case crypto.SHA384:
		return oidSHA384, nil
	case crypto.SHA512:
		return oidSHA512, nil
	}
	return nil, fmt.Errorf("unsupported hash %s (use sha256, sha384 or sha512)", h)
}

func signatureAlgorithm(pub crypto.PublicKey, h crypto.Hash) (algorithm, error) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return algorithm{Algorithm: oidRSA, Parameters: null}, nil
	case *ecdsa.PublicKey:
		switch h {
		case crypto.SHA256:
			return algorithm{Algorithm: oidECDSA256}, nil
		case crypto.SHA384:
			return algorithm{Algorithm: oidECDSA384}, nil
		case crypto.SHA512:
			return algorithm{Algorithm: oidECDSA512}, nil
		}
	}
	return algorithm{}, fmt.Errorf("unsupported key type %T (the kernel verifies RSA and ECDSA module signatures)", pub)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// LoadKeyPair reads a PEM private key (PKCS#8, PKCS#1 or SEC 1) and a PEM or
// DER X.509 certificate, as made by the kernel's certs/ tooling or openssl.
// The key and certificate may be in one file.
func LoadKeyPair(keyPath, certPath string) (crypto.Signer, *x509.Certificate, error) {
	keyData, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	certData, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(keyData)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	cert, err := parseCert(certData)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return key, cert, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported; decrypt it first (openssl pkey)")
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
}

func parseCert(data []byte) (*x509.Certificate, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, errors.New("no PEM or DER X.509 certificate found")
	}
	return c, nil
}
