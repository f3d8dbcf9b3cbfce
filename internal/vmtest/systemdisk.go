package vmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kelp-project/kelp/internal/vmtest/proto"
)

// SystemDisk is one test machine's root disk: a copy-on-write overlay on a
// cached SystemImage. Boots that share it see each other's changes, as a
// real machine sees its disk across reboots.
type SystemDisk struct {
	Image   *SystemImage
	Overlay string
}

// NewSystemDisk creates an overlay of img in dir.
func NewSystemDisk(dir string, img *SystemImage) (*SystemDisk, error) {
	overlay := filepath.Join(dir, "root.qcow2")
	cmd := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", img.Image, overlay)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img create: %w: %s", err, bytes.TrimSpace(out))
	}
	return &SystemDisk{Image: img, Overlay: overlay}, nil
}

// payloadMount is where the system's test runner mounts the payload disk.
const payloadMount = "/kelp"

// writePayloadDisk makes the read-only disk a system boot's runner reads:
// the plan, the runner itself and the payload files (paths under /kelp).
func writePayloadDisk(cfg Config) (string, error) {
	bins, err := buildGuestBinaries()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "kelp-payload-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	plan, err := json.Marshal(proto.Plan{Steps: cfg.Steps})
	if err != nil {
		return "", err
	}
	put := func(rel string, data []byte, mode os.FileMode) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, mode)
	}
	if err := put("plan.json", plan, 0o644); err != nil {
		return "", err
	}
	if err := put("runner", bins.init, 0o755); err != nil {
		return "", err
	}
	var size int64 = len64(plan) + len64(bins.init)
	for _, f := range cfg.Files {
		rel, ok := strings.CutPrefix(clean(f.Path), strings.TrimPrefix(payloadMount, "/")+"/")
		if !ok {
			return "", fmt.Errorf("payload %s: system boots take payload files under %s/", f.Path, payloadMount)
		}
		data, mode, err := f.contents()
		if err != nil {
			return "", err
		}
		if err := put(rel, data, mode); err != nil {
			return "", err
		}
		size += len64(data)
	}
	img, err := os.CreateTemp("", "kelp-payload-*.img")
	if err != nil {
		return "", err
	}
	img.Close()
	mb := size>>20 + 16
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "KELPPLAN", "-d", dir, img.Name(), fmt.Sprintf("%dM", mb)).CombinedOutput()
	if err != nil {
		os.Remove(img.Name())
		return "", fmt.Errorf("payload disk: mkfs.ext4: %w: %s", err, bytes.TrimSpace(out))
	}
	return img.Name(), nil
}

func len64(b []byte) int64 { return int64(len(b)) }
