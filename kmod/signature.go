package kmod

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// SignatureMagic ends a signed module file.
const SignatureMagic = "~Module signature appended~\n"

// Signature describes a module's appended signature.
type Signature struct {
	Type     string `json:"type"`                // "PKCS#7"
	Signer   string `json:"signer,omitempty"`    // issuer common name
	KeyID    string `json:"key_id,omitempty"`    // serial number or subject key id, hex
	HashAlgo string `json:"hash_algo,omitempty"` // e.g. sha256
	Size     int    `json:"size"`
	// Error is set when the signature block could not be decoded.
	Error string `json:"error,omitempty"`
}

// module_signature (include/linux/module_signature.h): algo, hash, id_type,
// signer_len, key_id_len, pad[3], sig_len (big endian).
const sigInfoSize = 12

const pkeyIDPKCS7 = 2

// splitSignature returns the signature (nil if none) and the length of the
// ELF part of a module file.
func splitSignature(data []byte) (*Signature, int, error) {
	if len(data) < len(SignatureMagic) || string(data[len(data)-len(SignatureMagic):]) != SignatureMagic {
		return nil, len(data), nil
	}
	end := len(data) - len(SignatureMagic)
	if end < sigInfoSize {
		return nil, 0, fmt.Errorf("%w: signature trailer without signature information", ErrNotModule)
	}
	info := data[end-sigInfoSize : end]
	sigLen := int(binary.BigEndian.Uint32(info[8:12]))
	start := end - sigInfoSize - sigLen
	if sigLen <= 0 || start < 0 {
		return nil, 0, fmt.Errorf("%w: signature length %d does not fit the file", ErrNotModule, sigLen)
	}
	sig := &Signature{Size: sigLen}
	if info[2] != pkeyIDPKCS7 {
		sig.Type = fmt.Sprintf("id type %d", info[2])
		return sig, start, nil
	}
	sig.Type = "PKCS#7"
	if err := sig.decodePKCS7(data[start : start+sigLen]); err != nil {
		sig.Error = err.Error()
	}
	return sig, start, nil
}

// ASN.1 shapes of the parts of a CMS SignedData a module signature uses
// (RFC 5652). Certificates and CRLs are kept raw and ignored.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	AuthAttributes     asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial asn1.RawValue
}

var digestNames = map[string]string{
	"2.16.840.1.101.3.4.2.1": "sha256",
	"2.16.840.1.101.3.4.2.2": "sha384",
	"2.16.840.1.101.3.4.2.3": "sha512",
	"2.16.840.1.101.3.4.2.4": "sha224",
	"1.3.14.3.2.26":          "sha1",
}

func (s *Signature) decodePKCS7(der []byte) error {
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return fmt.Errorf("PKCS#7: %v", err)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return fmt.Errorf("PKCS#7 signed data: %v", err)
	}
	if len(sd.SignerInfos) == 0 {
		return fmt.Errorf("PKCS#7: no signer")
	}
	si := sd.SignerInfos[0]
	oid := si.DigestAlgorithm.Algorithm.String()
	s.HashAlgo = digestNames[oid]
	if s.HashAlgo == "" {
		s.HashAlgo = oid
	}
	switch {
	case si.SID.Class == asn1.ClassUniversal && si.SID.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(si.SID.FullBytes, &ias); err != nil {
			return fmt.Errorf("PKCS#7 signer id: %v", err)
		}
		var rdn pkix.RDNSequence
		if _, err := asn1.Unmarshal(ias.Issuer.FullBytes, &rdn); err == nil {
			var name pkix.Name
			name.FillFromRDNSequence(&rdn)
			s.Signer = name.CommonName
			if s.Signer == "" {
				s.Signer = name.String()
			}
		}
		s.KeyID = colonHex(ias.Serial.Bytes)
	case si.SID.Class == asn1.ClassContextSpecific && si.SID.Tag == 0:
		s.KeyID = colonHex(si.SID.Bytes)
	}
	return nil
}

func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
