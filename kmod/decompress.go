package kmod

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decompress returns the ELF image of a module file's contents: data
// itself when it is not compressed, else data decompressed (xz, zstd or
// gzip, the formats of CONFIG_MODULE_COMPRESS_*).
func Decompress(data []byte) ([]byte, error) {
	var r io.Reader
	var err error
	switch {
	case bytes.HasPrefix(data, []byte(compressions[0].magic)):
		r, err = xz.NewReader(bytes.NewReader(data))
	case bytes.HasPrefix(data, []byte(compressions[1].magic)):
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(data)); err == nil {
			defer d.Close()
			r = d
		}
	case bytes.HasPrefix(data, []byte(compressions[2].magic)):
		r, err = gzip.NewReader(bytes.NewReader(data))
	default:
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotModule, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrNotModule, err)
	}
	return out, nil
}
