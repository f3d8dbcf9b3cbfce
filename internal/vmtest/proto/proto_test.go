package proto

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	payloads := [][]byte{[]byte("6.1.0-56-amd64"), nil, []byte("line1\nKELP1 1 fake AAAA 00000000\n")}
	for _, p := range payloads {
		if err := w.Send(KindStep, p); err != nil {
			t.Fatal(err)
		}
	}
	// Noise a serial line might carry between reports is skipped.
	data := "garbage\r\n" + strings.ReplaceAll(buf.String(), "\n", "\r\n")
	r := NewReader(strings.NewReader(data))
	for i, want := range payloads {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Seq != i+1 || f.Kind != KindStep || !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame %d = %+v, want payload %q", i, f, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestFramesDamaged(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Send(KindStep, []byte("hello"))
	good := buf.String()
	for name, line := range map[string]string{
		"checksum":  strings.Replace(good, "aGVsbG8=", "aGVsbG9=", 1),
		"truncated": good[:len(good)-5] + "\n",
		"sequence":  strings.Replace(good, "KELP1 1 ", "KELP1 2 ", 1),
	} {
		_, err := NewReader(strings.NewReader(line)).Next()
		if err == nil || err == io.EOF {
			t.Errorf("%s: damaged frame accepted (err %v)", name, err)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	dep := `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
`
	md, err := ParseModuleDeps(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	got, err := md.LoadOrder([]string{"virtio-blk", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko", "kernel/drivers/block/virtio_blk.ko",
		"kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko", "kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("load order\n got %v\nwant %v", got, want)
	}
	if _, err := md.LoadOrder([]string{"nonexistent"}); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("unknown module: got %v", err)
	}
}
