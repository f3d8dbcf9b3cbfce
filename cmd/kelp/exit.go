package main

import (
	"errors"
	"fmt"

	"github.com/kelp-project/kelp/livepatch"
)

// Exit codes shared by every command (documented in `kelp --help` and the
// README).
const (
	exitOK      = 0
	exitFailure = 1 // refused by a check, bad input, or any other error
	// exitKernel: the kernel refused the module or an operation; kelp
	// changed nothing that the kernel did not undo itself.
	exitKernel = 2
	// exitReverted: a transition timed out and was reverted; the system
	// is as it was before the command.
	exitReverted = 3
	// exitIncomplete: the command stopped half-way and the system is
	// neither as asked nor as before (e.g. a reversal that stalled too, a
	// forced patch whose module cannot be removed); the message says what
	// is left.
	exitIncomplete = 4
	exitUsage      = 64
)

const exitCodesHelp = `Exit codes:
  0   success
  1   refused (pre-flight check, bad input) or failed; nothing was changed
  2   the kernel refused the module or the operation
  3   the transition timed out and was reverted: the system is as it was
  4   incomplete: the system is neither as asked nor as before (see message)
  64  usage error
The reason is always the last line on stderr.`

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

// exitCode maps an error of package livepatch to its exit code and a short
// kind for JSON reports.
func exitCode(err error) (int, string) {
	var (
		pe *livepatch.PreflightError
		ke *livepatch.KernelError
		te *livepatch.TimeoutError
		ie *livepatch.IncompleteError
		ee *exitError
	)
	switch {
	case err == nil:
		return exitOK, ""
	case errors.As(err, &ee):
		return ee.code, "error"
	case errors.As(err, &pe):
		return exitFailure, "refused"
	case errors.As(err, &ke):
		return exitKernel, "kernel-refused"
	case errors.As(err, &te) && te.Reverted:
		return exitReverted, "timed-out-reverted"
	case errors.As(err, &te):
		return exitIncomplete, "timed-out"
	case errors.As(err, &ie):
		return exitIncomplete, "incomplete"
	}
	return exitFailure, "error"
}

// asExit turns a livepatch error into the exitError main prints.
func asExit(err error) error {
	if err == nil {
		return nil
	}
	code, _ := exitCode(err)
	return &exitError{code: code, msg: err.Error()}
}
