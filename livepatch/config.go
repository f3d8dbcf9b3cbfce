package livepatch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// KernelConfig is a parsed kernel .config: option name (with CONFIG_
// prefix) to value, with "n" for "# CONFIG_X is not set".
type KernelConfig struct {
	Source string
	Values map[string]string
}

// Enabled reports whether opt (e.g. "CONFIG_LIVEPATCH") is y or m.
func (c *KernelConfig) Enabled(opt string) bool {
	v := c.Values[opt]
	return v == "y" || v == "m"
}

// ParseKernelConfig reads a .config text.
func ParseKernelConfig(r io.Reader) (map[string]string, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "# CONFIG_") && strings.HasSuffix(line, " is not set") {
			vals[strings.TrimSuffix(strings.TrimPrefix(line, "# "), " is not set")] = "n"
			continue
		}
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[k] = strings.Trim(v, `"`)
	}
	return vals, sc.Err()
}

// readKernelConfig finds the running kernel's config under root:
// /boot/config-<release>, then /proc/config.gz.
func readKernelConfig(root, release string) (*KernelConfig, error) {
	bootCfg := filepath.Join(root, "boot", "config-"+release)
	if data, err := os.ReadFile(bootCfg); err == nil {
		vals, err := ParseKernelConfig(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", bootCfg, err)
		}
		return &KernelConfig{Source: bootCfg, Values: vals}, nil
	}
	procCfg := filepath.Join(root, "proc", "config.gz")
	f, err := os.Open(procCfg)
	if err != nil {
		return nil, fmt.Errorf("no kernel config: neither %s nor %s is readable", bootCfg, procCfg)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", procCfg, err)
	}
	vals, err := ParseKernelConfig(zr)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", procCfg, err)
	}
	return &KernelConfig{Source: procCfg, Values: vals}, nil
}
