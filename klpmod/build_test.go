package klpmod

import (
	"os"
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

func TestBuildBodyChange(t *testing.T) {
	k := testenv.RequireKernel(t)
	m := buildPatch(t, k, "body-change", Options{Replace: true})
	t.Logf("%+v", m); if d := os.Getenv("KELP_KEEP"); d != "" { data, _ := os.ReadFile(m.Path); os.WriteFile(d, data, 0o644) }
}
