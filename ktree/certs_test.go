package ktree

import "testing"

// TestOnlyCertsFailed: the whole-tree dry run is kept when only certs/
// failed (a signing key the config names has no rule in a source tree, as
// in Debian's 6.1 cloud config), and refused for any other failure.
func TestOnlyCertsFailed(t *testing.T) {
	for stderr, want := range map[string]bool{
		"make[1]: *** No rule to make target 'output/signing_key.pem', needed by 'certs/signing_key.x509'.\n" +
			"make: *** [scripts/Makefile.build:508: certs] Error 2\nmake: Target '__build' not remade because of errors.\n": true,
		"make[2]: *** [scripts/Makefile.build:250: certs/system_certificates.o] Error 1\n":                                      true,
		"make: *** [scripts/Makefile.build:508: certs] Error 2\nmake: *** [scripts/Makefile.build:508: drivers] Error 2\n":      false,
		"make[3]: *** No rule to make target 'drivers/gpu/drm/x.h'.\nmake: *** [scripts/Makefile.build:508: drivers] Error 2\n": false,
		"make: *** [scripts/Makefile.build:508: certsx] Error 2\n":                                                              false,
		"make: m2c: No such file or directory\n":                                                                                false,
		"":                                                                                                                      false,
	} {
		if got := onlyCertsFailed(stderr); got != want {
			t.Errorf("onlyCertsFailed(%q) = %v, want %v", stderr, got, want)
		}
	}
}
