package main

import "fmt"

// Exit codes shared by every command (documented in `kelp help exit-codes`
// and the README).
const (
	exitOK      = 0
	exitFailure = 1 // refused by a check, bad input, or any other error
	exitUsage   = 64
)

// exitError carries a specific exit code out of a command. msg, when not
// empty, is printed as the last line on stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitWith(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}
