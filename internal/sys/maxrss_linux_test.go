package sys

import (
	"os/exec"
	"testing"
)

// TestMaxRSS: a shell whose child holds 64 MiB (tail keeping the last
// 64 MiB of a pipe) reports at least that much; true reports less.
func TestMaxRSS(t *testing.T) {
	cmd := exec.Command("sh", "-c", "head -c 67108864 /dev/zero | tail -c 67108864 >/dev/null")
	small := exec.Command("true")
	for _, c := range []*exec.Cmd{cmd, small} {
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
	}
	big, ok := MaxRSS(cmd.ProcessState)
	if !ok || big < 64<<20 {
		t.Fatalf("MaxRSS = %d, %v; want at least 64 MiB", big, ok)
	}
	little, ok := MaxRSS(small.ProcessState)
	if !ok || little <= 0 || little >= big {
		t.Fatalf("MaxRSS of true = %d, %v (the big one %d)", little, ok, big)
	}
}
