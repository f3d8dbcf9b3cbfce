package build

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/kelp-project/kelp/internal/atomicfile"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ktree"
)

// imageBuildID returns the GNU build id of the kernel in an x86 bzImage
// (/boot/vmlinuz-<release>): the compressed vmlinux the boot protocol's
// payload fields locate (setup header, protocol 2.08+), decompressed, and
// its notes read. xz payloads carry the x86 BCJ filter, so they go
// through xz(1); zstd and gzip are read here. "" when the image has no
// build id note.
func imageBuildID(ctx context.Context, image string) (string, error) {
	data, err := os.ReadFile(image)
	if err != nil {
		return "", err
	}
	payload, err := bzPayload(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", image, err)
	}
	var vmlinux []byte
	switch {
	case bytes.HasPrefix(payload, []byte("\xfd7zXZ\x00")):
		cmd := exec.CommandContext(ctx, "xz", "-dc")
		cmd.Stdin = bytes.NewReader(payload)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if vmlinux, err = cmd.Output(); err != nil {
			return "", fmt.Errorf("%s: xz -dc of its payload: %v %s", image, err, strings.TrimSpace(stderr.String()))
		}
	case bytes.HasPrefix(payload, []byte("\x28\xb5\x2f\xfd")):
		d, err := zstd.NewReader(bytes.NewReader(payload), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return "", err
		}
		defer d.Close()
		if vmlinux, err = io.ReadAll(d); err != nil {
			return "", fmt.Errorf("%s: zstd payload: %w", image, err)
		}
	case bytes.HasPrefix(payload, []byte("\x1f\x8b")):
		r, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return "", fmt.Errorf("%s: gzip payload: %w", image, err)
		}
		if vmlinux, err = io.ReadAll(r); err != nil {
			return "", fmt.Errorf("%s: gzip payload: %w", image, err)
		}
	default:
		return "", fmt.Errorf("%s: payload compressed in a format kelp does not read (%x)", image, payload[:min(6, len(payload))])
	}
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return "", fmt.Errorf("%s: its vmlinux: %w", image, err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return "", fmt.Errorf("%s: its vmlinux's notes: %w", image, err)
		}
		if id := ksym.BuildIDFromNotes(notes); id != "" {
			return id, nil
		}
	}
	return "", nil
}

// bzPayload returns the compressed kernel of a bzImage.
func bzPayload(data []byte) ([]byte, error) {
	if len(data) < 0x250 || string(data[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not an x86 bzImage (no HdrS setup header)")
	}
	if v := binary.LittleEndian.Uint16(data[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields", v)
	}
	setup := int(data[0x1f1])
	if setup == 0 {
		setup = 4
	}
	start := (setup+1)*512 + int(binary.LittleEndian.Uint32(data[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(data[0x24c:]))
	if start < 0 || end > len(data) || start >= end {
		return nil, fmt.Errorf("payload %d..%d outside the %d-byte image", start, end, len(data))
	}
	// kbuild appends the uncompressed size (4 bytes, size_append) to
	// every compressed kernel; it is no part of the stream.
	if end-start <= 4 {
		return nil, fmt.Errorf("payload of %d bytes", end-start)
	}
	return data[start : end-4], nil
}

// cachedImageBuildID is imageBuildID kept in cache per image file (path,
// size, time): decompressing a kernel takes about a second.
func cachedImageBuildID(ctx context.Context, image, cache string) (string, error) {
	key, err := ktree.FileKey(image)
	if err != nil {
		return "", err
	}
	p := filepath.Join(cache, ktree.Digest(image, key))
	if data, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	id, err := imageBuildID(ctx, image)
	if err != nil {
		return "", err
	}
	return id, atomicfile.WriteFile(p, []byte(id+"\n"), 0o644)
}
