package vmtest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kelp-project/kelp/internal/vmtest/proto"
)

// TestReportCutByKill: a report damaged after the step Config.KillAfter
// names (QEMU killed while the guest was writing) is no error; the same
// damage before it, or without a kill, is.
func TestReportCutByKill(t *testing.T) {
	stream := func(steps ...string) []byte {
		var b bytes.Buffer
		w := proto.NewWriter(&b)
		if err := w.Send(proto.KindReady, []byte("6.1.0-57-amd64")); err != nil {
			t.Fatal(err)
		}
		for _, name := range steps {
			data, err := json.Marshal(StepResult{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Send(proto.KindStep, data); err != nil {
				t.Fatal(err)
			}
		}
		var frame bytes.Buffer
		if err := proto.NewWriter(&frame).Send(proto.KindDmesg, []byte("a kernel log long enough to be cut")); err != nil {
			t.Fatal(err)
		}
		// The frame cut and its rest damaged, as a killed guest leaves it.
		half := frame.Bytes()[:frame.Len()/2]
		return append(append(b.Bytes(), half...), []byte("#\n")...)
	}
	for _, c := range []struct {
		name, killAfter string
		steps           []string
		wantErr         bool
	}{
		{"cut after the kill step", "marked", []string{"marked"}, false},
		{"cut before the kill step", "marked", []string{"other"}, true},
		{"cut without a kill", "", []string{"marked"}, true},
	} {
		rs := reportState{killAfter: c.killAfter}
		res := &Result{}
		rs.collect(bytes.NewReader(stream(c.steps...)), res, nil)
		if (rs.protoErr != nil) != c.wantErr {
			t.Errorf("%s: protocol error %v, want one: %v", c.name, rs.protoErr, c.wantErr)
		}
		if len(res.Steps) != len(c.steps) || !rs.ready {
			t.Errorf("%s: steps %+v, ready %v", c.name, res.Steps, rs.ready)
		}
	}
}
