package ksym

import "strings"

// cutLine splits text into its first line (without the "\n" and a "\r"
// before it) and the rest; a last line without "\n" is a line too.
func cutLine(text string) (line, rest string) {
	line, rest, _ = strings.Cut(text, "\n")
	return strings.TrimSuffix(line, "\r"), rest
}
