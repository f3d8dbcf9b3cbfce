package build

import (
	"testing"

	"github.com/kelp-project/kelp/internal/testenv"
)

// TestDependsOn reads the real Debian modules' depends= (named with
// dashes, as their files are: snd-timer) directly and through other
// modules.
func TestDependsOn(t *testing.T) {
	k := testenv.RequireKernel(t)
	for _, c := range []struct {
		mod, dep string
		want     bool
	}{
		{"snd_pcm", "snd_timer", true},  // depends=snd,snd-timer
		{"snd_pcm", "soundcore", true},  // through snd
		{"zram", "zsmalloc", true},      // block → mm
		{"ext4", "crc16", true},         // fs → lib
		{"zram", "crc16", false},        // none
		{"snd_timer", "snd_pcm", false}, // the other way round
	} {
		got, err := dependsOn(k.ModulesDir, c.mod, c.dep)
		if err != nil || got != c.want {
			t.Errorf("dependsOn(%s, %s) = %v, %v; want %v", c.mod, c.dep, got, err, c.want)
		}
	}
}
