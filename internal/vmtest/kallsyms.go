package vmtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/internal/testenv"
)

// Kallsyms returns the path of k's /proc/kallsyms as root sees it with no
// module loaded, taken with `kelp symbols` in a boot of k the first time
// and cached per kernel image: the symbol dump `kelp build --symbols`
// needs for a target other than the running kernel.
func Kallsyms(ctx context.Context, k *testenv.Kernel) (string, error) {
	key, err := testenv.FileKey(k.Image)
	if err != nil {
		return "", &testenv.ErrMissing{What: "kernel image " + k.Image, Package: "linux-image-" + k.Release}
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		return "", err
	}
	// The dump format is part of the key: dumps name their kernel (release,
	// build id, Debian version) in a header line.
	dir := filepath.Join(cache, "kallsyms", k.Release+"-"+testenv.Digest(key, "kelp-symbols-header-version"))
	_, err = testenv.Cached(dir, func(dir string) error {
		res, err := Run(ctx, Config{
			Kernel: k,
			// gzip+base64 keeps the report small on the serial line.
			Steps: []Step{{Name: "kallsyms", Shell: "kelp symbols | gzip -c | base64"}},
		})
		if err != nil {
			return err
		}
		st, ok := res.Step("kallsyms")
		if !ok || st.Exit != 0 {
			return fmt.Errorf("kelp symbols in the guest failed: %s", st.Stderr)
		}
		gz, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(st.Stdout), ""))
		if err != nil {
			return fmt.Errorf("kallsyms dump: %w", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return fmt.Errorf("kallsyms dump: %w", err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return fmt.Errorf("kallsyms dump: %w", err)
		}
		return os.WriteFile(filepath.Join(dir, "kallsyms"), data, 0o644)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kallsyms"), nil
}
