package elfobj

import "strings"

// StringList splits the contents of a section made of NUL-terminated
// strings, such as .modinfo, into its strings. Empty strings (padding
// between entries) are skipped, and a last string without its terminator
// is kept.
func StringList(data []byte) []string {
	var out []string
	for len(data) > 0 {
		end := 0
		for end < len(data) && data[end] != 0 {
			end++
		}
		if end > 0 {
			out = append(out, string(data[:end]))
		}
		if end == len(data) {
			break
		}
		data = data[end+1:]
	}
	return out
}

// AppendStringList appends each string and its NUL terminator to dst: the
// contents of a .modinfo-style section.
func AppendStringList(dst []byte, list ...string) []byte {
	for _, s := range list {
		dst = append(dst, s...)
		dst = append(dst, 0)
	}
	return dst
}

// ModinfoEntry is one "key=value" string of a .modinfo section.
type ModinfoEntry struct {
	Key, Value string
}

// Modinfo decodes a .modinfo section: its strings split at the first '='
// (a string without one has an empty Value), in file order, duplicates
// kept (alias=, depends= and parm= repeat).
func Modinfo(data []byte) []ModinfoEntry {
	list := StringList(data)
	out := make([]ModinfoEntry, len(list))
	for i, s := range list {
		k, v, _ := strings.Cut(s, "=")
		out[i] = ModinfoEntry{Key: k, Value: v}
	}
	return out
}
