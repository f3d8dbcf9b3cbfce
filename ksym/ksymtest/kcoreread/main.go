// Command kcoreread runs inside a test guest: for each "name sympos size"
// line on stdin it finds the symbol the way the livepatch core does (the
// sympos-th vmlinux symbol called name in /proc/kallsyms order; sympos 0
// means the name must be unique) and prints "name sympos index hex", the
// size bytes at its address read from /proc/kcore, and also one line per
// other same-named instance (index is the 1-based rank among them).
package main

import (
	"bufio"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kcoreread:", err)
		os.Exit(1)
	}
}

func run() error {
	addrs := map[string][]uint64{}
	ks, err := os.Open("/proc/kallsyms")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(ks)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 { // module symbols carry a fourth field
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return err
		}
		addrs[f[2]] = append(addrs[f[2]], a)
	}
	ks.Close()
	core, err := elf.Open("/proc/kcore")
	if err != nil {
		return err
	}
	read := func(addr, n uint64) ([]byte, error) {
		for _, p := range core.Progs {
			if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr+n <= p.Vaddr+p.Memsz {
				buf := make([]byte, n)
				_, err := p.ReadAt(buf, int64(addr-p.Vaddr))
				return buf, err
			}
		}
		return nil, fmt.Errorf("address %#x not in /proc/kcore", addr)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 3 {
			continue
		}
		size, _ := strconv.ParseUint(f[2], 10, 64)
		for i, a := range addrs[f[0]] {
			b, err := read(a, size)
			if err != nil {
				return err
			}
			fmt.Printf("%s %s %d %s\n", f[0], f[1], i+1, hex.EncodeToString(b))
		}
	}
	return in.Err()
}
