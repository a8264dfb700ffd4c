package serf

// #include <serf.h>
import "C"

import (
	"fmt"
	"runtime"
	"strings"
)

// Status is a libserf status code (serf_status). The non-zero ones are errors themselves, so
// that errors.Is(err, serf.ErrTooLarge) matches an [*Error] carrying that status.
type Status int32

// The failure statuses of the C API, one per cause.
const (
	// ErrNull: a required argument was missing (a bug in this package if it ever shows).
	ErrNull Status = C.SERF_ERR_NULL
	// ErrUTF8: a string was not valid UTF-8.
	ErrUTF8 Status = C.SERF_ERR_UTF8
	// ErrInvalid: an argument was out of range or malformed (address, key, option value...).
	ErrInvalid Status = C.SERF_ERR_INVALID
	// ErrTooLarge: a payload, name or tag set is larger than the protocol allows.
	ErrTooLarge Status = C.SERF_ERR_TOO_LARGE
	// ErrTimeout: nothing happened within the time allowed.
	ErrTimeout Status = C.SERF_ERR_TIMEOUT
	// ErrNotFound: the named member, tag or pending query does not exist.
	ErrNotFound Status = C.SERF_ERR_NOT_FOUND
	// ErrStopped: the node has left, was shut down or closed; it does no more work.
	ErrStopped Status = C.SERF_ERR_STOPPED
	// ErrIO: an operating-system error (binding sockets, reading a file...).
	ErrIO Status = C.SERF_ERR_IO
	// ErrJoin: a join reached none of the given addresses.
	ErrJoin Status = C.SERF_ERR_JOIN
	// ErrInternal: a bug in libserf; the node stays usable.
	ErrInternal Status = C.SERF_ERR_INTERNAL
)

var statusText = map[Status]string{
	0:           "ok",
	ErrNull:     "missing argument",
	ErrUTF8:     "invalid UTF-8",
	ErrInvalid:  "invalid argument",
	ErrTooLarge: "too large",
	ErrTimeout:  "timed out",
	ErrNotFound: "not found",
	ErrStopped:  "node stopped",
	ErrIO:       "I/O error",
	ErrJoin:     "join failed",
	ErrInternal: "internal error",
}

// Error describes the status, so a bare Status is a usable error value.
func (s Status) Error() string {
	if t, ok := statusText[s]; ok {
		return "serf: " + t
	}
	return fmt.Sprintf("serf: status %d", int32(s))
}

// Name is the C name of the status ("SERF_ERR_TOO_LARGE"), as in serf.h and libserf's logs.
func (s Status) Name() string {
	return C.GoString(C.serf_status_name(C.int32_t(s)))
}

// Error is a failed operation: which one, the C status and libserf's message for that very call.
type Error struct {
	// Status is the C status; errors.Is compares against it.
	Status Status
	// Op names the operation that failed ("join", "config bind"...).
	Op string
	// Message is libserf's description (or this package's, for checks made in Go).
	Message string
}

// Error reads "serf: op: message (SERF_ERR_...)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("serf: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(strings.TrimPrefix(e.Status.Error(), "serf: "))
	}
	fmt.Fprintf(&b, " (%s)", e.Status.Name())
	return b.String()
}

// Unwrap exposes the Status, which makes errors.Is(err, serf.ErrX) work.
func (e *Error) Unwrap() error { return e.Status }

// newError is an error detected in Go, before or instead of a C call.
func newError(st Status, op, format string, args ...interface{}) *Error {
	return &Error{Status: st, Op: op, Message: fmt.Sprintf(format, args...)}
}

// errClosed is what every call on a closed node returns.
func errClosed(op string) *Error {
	return &Error{Status: ErrStopped, Op: op, Message: "the node is closed"}
}

// call runs f, one fallible C call, and turns its status into an error. libserf keeps the last
// error message per OS thread, so the goroutine stays on its thread from the call until the
// message is copied: the message is then that of this call, not of another goroutine's.
func call(op string, f func() C.enum_serf_status) error {
	runtime.LockOSThread()
	st := f()
	var msg string
	if st != C.SERF_OK {
		msg = C.GoString(C.serf_last_error_message())
	}
	runtime.UnlockOSThread()
	if st == C.SERF_OK {
		return nil
	}
	return &Error{Status: Status(st), Op: op, Message: msg}
}
