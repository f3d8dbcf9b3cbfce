package vmtest

import "testing"

// TestDefaultCPUs: guests of 6.12 and later kernels get one vCPU unless
// their Config names a count; older kernels two.
func TestDefaultCPUs(t *testing.T) {
	for rel, want := range map[string]int{
		"6.1.0-57-amd64": 2, "6.1.0-57-cloud-amd64": 2, "5.10.0-30-amd64": 2,
		"6.12.118+deb13-amd64": 1, "6.12.118+deb13-cloud-amd64": 1, "6.16.3+deb14-amd64": 1, "7.0.1": 1,
	} {
		if got := defaultCPUs(rel); got != want {
			t.Errorf("defaultCPUs(%q) = %d; want %d", rel, got, want)
		}
	}
}
