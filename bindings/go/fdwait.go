package serf

// #include <fcntl.h>
// static int goserf_dup_cloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }
import "C"

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// fdWaiter waits in Go's netpoller (no parked OS thread) for one of libserf's readiness
// descriptors: the node's event fd or a query's fd, both non-blocking eventfds that are readable
// exactly while something is queued. It owns a duplicate of the descriptor, so closing it (to wake
// a waiting goroutine) never closes libserf's. The descriptor is never read here: libserf drains
// it itself as items are taken.
type fdWaiter struct {
	f  *os.File
	rc syscall.RawConn
}

// newFDWaiter registers a duplicate of fd (which libserf keeps owning) with the netpoller.
func newFDWaiter(fd C.int, name string) (*fdWaiter, error) {
	if fd < 0 {
		return nil, fmt.Errorf("no descriptor for %s", name)
	}
	dup, err := C.goserf_dup_cloexec(fd)
	if dup < 0 {
		return nil, fmt.Errorf("dup %s descriptor: %v", name, err)
	}
	// The duplicate shares the original's O_NONBLOCK flag, so os.NewFile puts it in the
	// netpoller (a blocking descriptor would make every wait park an OS thread).
	f := os.NewFile(uintptr(dup), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fdWaiter{f: f, rc: rc}, nil
}

// wait calls drain, then again each time the descriptor becomes readable, until drain returns
// true. drain takes what is queued without blocking and returns false when the queue is empty.
// It must never block (on a channel or a lock held across a close): close waits for it. wait
// returns an error when the waiter is closed or its deadline passes (os.ErrDeadlineExceeded).
func (w *fdWaiter) wait(drain func() bool) error {
	return w.rc.Read(func(uintptr) bool { return drain() })
}

// setDeadline makes a current or later wait return os.ErrDeadlineExceeded at t (a past t: now).
func (w *fdWaiter) setDeadline(t time.Time) error { return w.f.SetReadDeadline(t) }

// close wakes a waiting wait (which returns an error) and releases the duplicate descriptor.
func (w *fdWaiter) close() error { return w.f.Close() }
