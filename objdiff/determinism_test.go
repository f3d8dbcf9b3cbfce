package objdiff

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDeterministic diffs the same patch twice from freshly parsed
// objects: the report's JSON and the output object's bytes are equal.
func TestDeterministic(t *testing.T) {
	var reports, objects [2][]byte
	for i := range reports {
		res := diffPatch(t, "clone-part-cold", false)[0]
		if res.err != nil {
			t.Fatal(res.err)
		}
		var err error
		if reports[i], err = json.Marshal(res.res.Report); err != nil {
			t.Fatal(err)
		}
		if objects[i], err = res.res.Object.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(reports[0], reports[1]) {
		t.Errorf("reports differ:\n%s\n%s", reports[0], reports[1])
	}
	if !bytes.Equal(objects[0], objects[1]) {
		t.Errorf("output objects differ")
	}
}
