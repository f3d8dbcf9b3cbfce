package ktree

import "testing"

// TestObjectNames: an object is found by its cleaned path under the name
// kbuild builds it under, that name cleaned or not (amdgpu's
// ../display/, kvm's ../../../virt/); two names of one object, an
// object not listed, an uncleaned query and a line's prefix are not
// names; a name with "/." that is already clean is found as itself.
func TestObjectNames(t *testing.T) {
	record := "arch/x86/kvm/../../../virt/kvm/kvm_main.o\n" +
		"drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o\n" +
		"drivers/a/../b/twice.o\n" +
		"drivers/b/twice.o\n" +
		"drivers/c/../b/thrice.o\n" +
		"drivers/d/../b/thrice.o\n" +
		"drivers/e/../b/same.o\n" +
		"drivers/e/../b/same.o\n" +
		"fs/proc/cmdline.o\n" +
		"lib/.hidden.o\n" +
		"net/core/dev.o"
	n, err := newObjectNames([]byte(record))
	if err != nil {
		t.Fatal(err)
	}
	for obj, want := range map[string]string{
		"virt/kvm/kvm_main.o":                      "arch/x86/kvm/../../../virt/kvm/kvm_main.o",
		"drivers/gpu/drm/amd/display/dc/core/dc.o": "drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o",
		"drivers/b/twice.o":                        "",
		"drivers/b/thrice.o":                       "",
		"drivers/b/same.o":                         "drivers/e/../b/same.o",
		"fs/proc/cmdline.o":                        "fs/proc/cmdline.o",
		"lib/.hidden.o":                            "lib/.hidden.o",
		"net/core/dev.o":                           "net/core/dev.o",
	} {
		if got, ok := n.raw(obj); !ok || got != want {
			t.Errorf("%s: %q, %v; want %q", obj, got, ok, want)
		}
	}
	for _, obj := range []string{"fs/proc/array.o", "proc/cmdline.o", "fs/proc/cmdline", "drivers/gpu/drm/amd/amdgpu/../display/dc/core/dc.o", "./fs/proc/cmdline.o", ""} {
		if got, ok := n.raw(obj); ok {
			t.Errorf("%q is a name: %q", obj, got)
		}
	}
	if _, err := newObjectNames([]byte("\n\n")); err == nil {
		t.Error("a record of no name is accepted")
	}
}
