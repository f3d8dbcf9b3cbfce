package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kelp-project/kelp/internal/testenv"
)

// Disk is a raw ext4 image attached as /dev/vda and mounted on /persist in
// the guest. The same Disk passed to several boots keeps its contents, so
// tests can observe what survives a reboot.
type Disk struct {
	Path string
}

// diskModules are what the guest needs to mount the disk.
var diskModules = []string{"crc32c_generic", "virtio_pci", "virtio_blk", "ext4"}

// NewDisk creates an empty ext4 image of sizeMB in dir.
func NewDisk(dir string, sizeMB int) (*Disk, error) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return nil, &testenv.ErrMissing{What: "mkfs.ext4", Package: "e2fsprogs"}
	}
	path := filepath.Join(dir, "persist.img")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(int64(sizeMB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create disk image: %w", err)
	}
	var out bytes.Buffer
	cmd := exec.Command(mkfs, "-q", "-F", "-L", "persist", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("mkfs.ext4 %s: %w: %s", path, err, out.String())
	}
	return &Disk{Path: path}, nil
}
