package main

import (
	"errors"
	"fmt"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/refusal"
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
// empty, is printed as the last line on stderr. cause, when set, is the
// error behind it, for the details of the JSON error object.
type exitError struct {
	code  int
	msg   string
	cause error
}

func (e *exitError) Error() string { return e.msg }

func (e *exitError) Unwrap() error { return e.cause }

func exitWith(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// failWith is exitWith(exitFailure, ...) keeping err as the cause.
func failWith(err error, format string, args ...any) error {
	return &exitError{code: exitFailure, msg: fmt.Sprintf(format, args...), cause: err}
}

// Error kinds of the JSON error object (docs/cli.md).
const (
	kindUsage      = "usage"
	kindRefused    = "refused"
	kindFailed     = "failed"
	kindKernel     = "kernel_refused"
	kindReverted   = "timed_out_reverted"
	kindIncomplete = "incomplete"
)

// exitCode maps an error to its exit code and its kind for JSON reports.
func exitCode(err error) (int, string) {
	var (
		pe *livepatch.PreflightError
		ke *livepatch.KernelError
		te *livepatch.TimeoutError
		ie *livepatch.IncompleteError
		re *refusal.Error
		ee *exitError
	)
	switch {
	case err == nil:
		return exitOK, ""
	case errors.As(err, &ee) && ee.code == exitUsage:
		return exitUsage, kindUsage
	case errors.As(err, &pe), errors.As(err, &re):
		return exitFailure, kindRefused
	case errors.As(err, &ke):
		return exitKernel, kindKernel
	case errors.As(err, &te) && te.Reverted:
		return exitReverted, kindReverted
	case errors.As(err, &te), errors.As(err, &ie):
		return exitIncomplete, kindIncomplete
	case errors.As(err, &ee):
		switch ee.code {
		case exitKernel:
			return ee.code, kindKernel
		case exitReverted:
			return ee.code, kindReverted
		case exitIncomplete:
			return ee.code, kindIncomplete
		}
		return ee.code, kindFailed
	}
	return exitFailure, kindFailed
}

// errorReport is the one shape of the "error" object of every command's
// JSON document.
type errorReport struct {
	Kind     string `json:"kind"`
	ExitCode int    `json:"exit_code"`
	Message  string `json:"message"`
	// Blockers are the tasks that kept a transition from finishing.
	Blockers []livepatch.Task `json:"blockers,omitempty"`
	// KernelLog are the kernel's log lines about a refused operation.
	KernelLog []string `json:"kernel_log,omitempty"`
	// Refusals are the reasons a patch cannot be built, one each.
	Refusals []string `json:"refusals,omitempty"`
}

func newErrorReport(err error) *errorReport {
	code, kind := exitCode(err)
	r := &errorReport{Kind: kind, ExitCode: code, Message: err.Error()}
	var (
		te *livepatch.TimeoutError
		ke *livepatch.KernelError
		re *refusal.Error
	)
	if errors.As(err, &te) {
		r.Blockers = te.Blockers
	}
	if errors.As(err, &ke) {
		r.KernelLog = ke.Log
	}
	if errors.As(err, &re) {
		r.Refusals = re.Strings()
	}
	return r
}

// asExit turns an error into the exitError main prints.
func asExit(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	code, _ := exitCode(err)
	return &exitError{code: code, msg: err.Error(), cause: err}
}
