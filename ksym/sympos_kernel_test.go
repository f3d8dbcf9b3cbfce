package ksym_test

import (
	"context"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kelp-project/kelp/elfobj"
	"github.com/kelp-project/kelp/internal/testenv"
	"github.com/kelp-project/kelp/internal/vmtest"
	"github.com/kelp-project/kelp/ksym"
	"github.com/kelp-project/kelp/ksym/ksymtest"
)

// probe is one duplicated local function whose sympos ksym computed.
type probe struct {
	obj, name string
	pos       int
	code      []byte
	mask      []bool // bytes the running kernel may have rewritten
}

// TestSymposInKernel computes, from the kallsyms dump alone, the sympos of
// every duplicated local function defined by the vmlinux objects of the
// kernel object set under kernel/, mm/ and fs/, then boots the kernel and
// checks, by the kernel's own kallsyms order and the code at the address it
// gives (read from /proc/kcore), that each sympos selects the instance the
// object defines: the one whose bytes match the object's, better than any
// other instance of the name.
func TestSymposInKernel(t *testing.T) {
	k := testenv.RequireKernel(t)
	kern := ksymtest.Kernel(t, k)
	var names []string
	for _, n := range testenv.KernelObjectSet() {
		if strings.HasPrefix(n, "kernel/") || strings.HasPrefix(n, "mm/") || strings.HasPrefix(n, "fs/") {
			names = append(names, n)
		}
	}
	objs, err := k.Objects(context.Background(), names)
	if err != nil {
		testenv.MissingOr(t, err)
	}
	var probes []probe
	var ambiguous, missing int
	for _, o := range objs {
		if o.Module {
			continue
		}
		f, err := elfobj.ReadFile(o.Path)
		if err != nil {
			t.Fatal(err)
		}
		loc := ksym.NewLocator(kern.Vmlinux, f, "")
		for _, s := range f.Symbols {
			if !s.IsLocal() || s.Type != elf.STT_FUNC || !ksym.Listable(s) || s.Size < 16 || len(kern.Vmlinux.Lookup(s.Name)) < 2 {
				continue
			}
			pos, err := loc.Sympos(s)
			switch err.(type) {
			case nil:
			case *ksym.AmbiguousError:
				ambiguous++
				continue
			case *ksym.NotFoundError:
				missing++
				continue
			default:
				t.Fatalf("%s: %s: %v", o.Name, s.Name, err)
			}
			probes = append(probes, newProbe(f, o.Name, s, pos))
		}
	}
	t.Logf("duplicated local functions: %d located, %d ambiguous (refused with candidates), %d not in kallsyms", len(probes), ambiguous, missing)
	if len(probes) < 50 {
		t.Fatalf("only %d duplicated local functions located", len(probes))
	}
	if missing > 0 {
		t.Errorf("%d symbols of the objects are missing from kallsyms: objects and kernel differ", missing)
	}
	got := readInGuest(t, k, probes)
	distinct := 0
	for _, p := range probes {
		insts := got[p.name]
		if len(insts) < 2 || p.pos < 1 || p.pos > len(insts) {
			t.Errorf("%s: %s: sympos %d of %d instances in the guest's kallsyms", p.obj, p.name, p.pos, len(insts))
			continue
		}
		mine := score(p, insts[p.pos-1])
		other := 0.0
		for i, b := range insts {
			if i != p.pos-1 {
				other = max(other, score(p, b))
			}
		}
		// Out-of-line copies of the same static inline are byte for byte
		// equal and cannot be told apart by their code: then the chosen
		// instance must only match as well as any.
		if mine < 0.5 || mine < other {
			t.Errorf("%s: %s: sympos %d matches the object's code %.2f, another instance %.2f", p.obj, p.name, p.pos, mine, other)
		}
		if mine-other >= 0.1 {
			distinct++
		}
	}
	t.Logf("%d of the located instances differ in code from every same-named one and match it", distinct)
	if distinct < 20 {
		t.Errorf("only %d located instances could be told apart by their code", distinct)
	}
}

func newProbe(f *elfobj.File, obj string, s *elfobj.Symbol, pos int) probe {
	code := s.Section.Data[s.Value : s.Value+s.Size]
	mask := make([]bool, len(code))
	arch := f.Arch()
	for _, rs := range f.RelocSections(s.Section) {
		for _, r := range rs.Relocs {
			if r.Offset < s.Value || r.Offset >= s.Value+s.Size {
				continue
			}
			rt, _ := arch.Reloc(r.Type)
			// The field, and the opcode before it: calls to __fentry__
			// become NOPs and alternatives rewrite instructions.
			for i := int(r.Offset-s.Value) - 2; i < int(r.Offset-s.Value)+rt.Size; i++ {
				if i >= 0 && i < len(mask) {
					mask[i] = true
				}
			}
		}
	}
	return probe{obj: obj, name: s.Name, pos: pos, code: code, mask: mask}
}

// score is the fraction of the bytes the kernel leaves alone that match.
func score(p probe, b []byte) float64 {
	same, n := 0, 0
	for i, c := range p.code {
		if p.mask[i] {
			continue
		}
		n++
		if i < len(b) && b[i] == c {
			same++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(same) / float64(n)
}

// readInGuest boots the test kernel and reads, for each probe's name, the
// code of every instance in kallsyms order.
func readInGuest(t *testing.T, k *testenv.Kernel, probes []probe) map[string][][]byte {
	t.Helper()
	sizes := map[string]int{}
	for _, p := range probes {
		if len(p.code) > sizes[p.name] {
			sizes[p.name] = len(p.code)
		}
	}
	var want strings.Builder
	keys := make([]string, 0, len(sizes))
	for n := range sizes {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, n := range keys {
		fmt.Fprintf(&want, "%s 0 %d\n", n, sizes[n])
	}
	res := vmtest.RunT(t, vmtest.Config{
		Kernel: k,
		Files: []vmtest.File{
			{Path: "/root/kcoreread", Host: kcoreread(t), Mode: 0o755},
			{Path: "/root/want.txt", Data: []byte(want.String())},
		},
		Steps: []vmtest.Step{{Name: "read", Shell: "/root/kcoreread < /root/want.txt"}},
	})
	out := map[string][][]byte{}
	for _, line := range strings.Split(res.MustStep(t, "read").Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		idx, _ := strconv.Atoi(f[2])
		b, err := hex.DecodeString(f[3])
		if err != nil || idx != len(out[f[0]])+1 {
			t.Fatalf("guest output %q", line)
		}
		out[f[0]] = append(out[f[0]], b)
	}
	return out
}

// kcoreread builds the guest helper as a static binary.
func kcoreread(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	out := filepath.Join(t.TempDir(), "kcoreread")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./ksym/ksymtest/kcoreread")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kcoreread: %v\n%s", err, b)
	}
	return out
}
