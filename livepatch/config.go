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
			if k := strings.TrimSuffix(strings.TrimPrefix(line, "# "), " is not set"); configOption(k) {
				vals[k] = "n"
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !configOption(k) {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		vals[k] = v
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

// configOption reports whether s is a config option name: CONFIG_ and
// letters, digits and underscores.
func configOption(s string) bool {
	name, ok := strings.CutPrefix(s, "CONFIG_")
	if !ok || name == "" {
		return false
	}
	for _, c := range name {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
