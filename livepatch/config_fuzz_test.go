package livepatch

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var configKey = regexp.MustCompile(`^CONFIG_[A-Za-z0-9_]+$`)

// FuzzParseKernelConfig: a kernel config from another machine yields only
// CONFIG_ options with plain names, and written back in .config form it
// reads the same.
func FuzzParseKernelConfig(f *testing.F) {
	f.Add("#\n# comment\nCONFIG_LIVEPATCH=y\n# CONFIG_DEBUG is not set\nCONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\nCONFIG_NR_CPUS=8192\n")
	f.Add("CONFIG_A B=y\nCONFIG_=m\nCONFIG_X\n# CONFIG_Y Z is not set\n")
	f.Fuzz(func(t *testing.T, text string) {
		vals, err := ParseKernelConfig(strings.NewReader(text))
		if err != nil {
			return // a line too long for the scanner
		}
		keys := make([]string, 0, len(vals))
		for k, v := range vals {
			if !configKey.MatchString(k) {
				t.Fatalf("option %q", k)
			}
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("%s = %q", k, v)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			if vals[k] == "n" {
				fmt.Fprintf(&b, "# %s is not set\n", k)
			} else {
				fmt.Fprintf(&b, "%s=\"%s\"\n", k, vals[k])
			}
		}
		again, err := ParseKernelConfig(strings.NewReader(b.String()))
		if err != nil || !reflect.DeepEqual(again, vals) {
			t.Fatalf("written back reads differently (%v):\n%s", err, b.String())
		}
	})
}
