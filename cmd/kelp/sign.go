package main

import (
	"crypto"
	"fmt"
	"os"

	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/kmod"
	"github.com/kelp-project/kelp/modsign"
	"github.com/spf13/cobra"
)

func newSignCmd(g *globals) *cobra.Command {
	var key, cert, out, hash string
	c := &cobra.Command{
		Use:   "sign --key KEY.pem --cert CERT FILE.ko",
		Short: "Append the kernel's module signature (PKCS#7) to a module",
		Long: `sign appends a detached PKCS#7 signature in the kernel's module signature
format (the format of scripts/sign-file), replacing any existing signature.
KEY is a PEM private key (RSA or ECDSA), CERT a PEM or DER X.509 certificate;
the kernel accepts the module when the certificate is in its trusted
keyrings. The file is replaced atomically unless -o names another file.

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" || cert == "" {
				return exitWith(exitUsage, "sign: --key and --cert are required (see kelp sign --help)")
			}
			h, ok := map[string]crypto.Hash{"sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}[hash]
			if !ok {
				return exitWith(exitUsage, "sign: unsupported --hash %q (sha256, sha384, sha512; see kelp sign --help)", hash)
			}
			fail := func(err error, format string, a ...any) error {
				return g.emit(cmd, nil, failWith(err, format, a...))
			}
			signer, certificate, err := modsign.LoadKeyPair(key, cert)
			if err != nil {
				return fail(err, "sign: %v", err)
			}
			in := args[0]
			data, err := os.ReadFile(in)
			if err != nil {
				return fail(err, "sign: %v", err)
			}
			signed, err := modsign.Sign(data, signer, certificate, h)
			if err != nil {
				return fail(err, "sign %s: %v", in, err)
			}
			if out == "" {
				out = in
			}
			mode := os.FileMode(0o644)
			if st, err := os.Stat(out); err == nil {
				mode = st.Mode().Perm()
			}
			m, err := kmod.Parse(signed)
			if err != nil {
				return fail(err, "sign %s: %v", in, err)
			}
			if err := atomicfile.Replace(out, signed, mode); err != nil {
				return fail(err, "sign: write %s: %v", out, err)
			}
			if g.json {
				return g.emit(cmd, signReport{File: out, Module: m.Name, Signature: m.Signature}, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s (%s) with %q, key %s, %s\n", out, m.Name, m.Signature.Signer, m.Signature.KeyID, m.Signature.HashAlgo)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "PEM private key")
	c.Flags().StringVar(&cert, "cert", "", "X.509 certificate (PEM or DER)")
	c.Flags().StringVarP(&out, "output", "o", "", "write the signed module here instead of replacing FILE.ko")
	c.Flags().StringVar(&hash, "hash", "sha256", "digest: sha256, sha384 or sha512")
	return c
}

// signReport is `kelp sign --json`.
type signReport struct {
	File      string          `json:"file"`
	Module    string          `json:"module"`
	Signature *kmod.Signature `json:"signature"`
}
