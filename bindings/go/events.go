package serf

// #include <serf.h>
import "C"

import (
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// EventType says what an Event is (HashiCorp's EventType, plus EventShutdown).
type EventType int

// The event types.
const (
	EventMemberJoin   EventType = C.SERF_EVENT_MEMBER_JOIN
	EventMemberLeave  EventType = C.SERF_EVENT_MEMBER_LEAVE
	EventMemberFailed EventType = C.SERF_EVENT_MEMBER_FAILED
	EventMemberUpdate EventType = C.SERF_EVENT_MEMBER_UPDATE
	EventMemberReap   EventType = C.SERF_EVENT_MEMBER_REAP
	EventUser         EventType = C.SERF_EVENT_USER
	EventQuery        EventType = C.SERF_EVENT_QUERY
	// EventShutdown: the node stopped by itself (it lost a name-conflict vote).
	EventShutdown EventType = C.SERF_EVENT_SHUTDOWN
)

// String is the name HashiCorp's agent uses ("member-join", ..., "user", "query"), and
// "shutdown".
func (t EventType) String() string {
	switch t {
	case EventMemberJoin:
		return "member-join"
	case EventMemberLeave:
		return "member-leave"
	case EventMemberFailed:
		return "member-failed"
	case EventMemberUpdate:
		return "member-update"
	case EventMemberReap:
		return "member-reap"
	case EventUser:
		return "user"
	case EventQuery:
		return "query"
	case EventShutdown:
		return "shutdown"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is what Serf.Events delivers: a MemberEvent, UserEvent, *Query or ShutdownEvent.
type Event interface {
	EventType() EventType
	String() string
}

// MemberEvent reports members that joined, left, failed, were updated or reaped.
type MemberEvent struct {
	Type    EventType
	Members []Member
}

// EventType is one of the member event types.
func (e MemberEvent) EventType() EventType { return e.Type }

// String is the event type's name, as HashiCorp's.
func (e MemberEvent) String() string { return e.Type.String() }

// UserEvent is an event sent with SendEvent (or `serf event`) by any member.
type UserEvent struct {
	LTime    uint64
	Name     string
	Payload  []byte
	Coalesce bool
}

// EventType is EventUser.
func (e UserEvent) EventType() EventType { return EventUser }

// String reads "user-event: NAME", as HashiCorp's.
func (e UserEvent) String() string { return "user-event: " + e.Name }

// ShutdownEvent says the node stopped by itself (it lost a name-conflict vote).
type ShutdownEvent struct {
	Reason string
}

// EventType is EventShutdown.
func (e ShutdownEvent) EventType() EventType { return EventShutdown }

// String reads "shutdown: REASON".
func (e ShutdownEvent) String() string { return "shutdown: " + e.Reason }

// Query is a query this node received; answer it with Respond before Deadline.
type Query struct {
	LTime      uint64
	Name       string
	Payload    []byte
	ID         uint32
	SourceNode string
	// Deadline is when the sender stops collecting answers; later answers are refused.
	Deadline time.Time

	h *queryHandle
}

// EventType is EventQuery.
func (q *Query) EventType() EventType { return EventQuery }

// String reads "query: NAME", as HashiCorp's.
func (q *Query) String() string { return "query: " + q.Name }

// queryHandle keeps a received query's C event, which serf_query_respond needs, until the first
// of: a final Respond, the deadline (a timer) or Close. mu makes those three race-free.
type queryHandle struct {
	n     *node
	mu    sync.Mutex
	ev    *C.serf_event_t // nil once released
	timer *time.Timer
}

// release frees the C event (once) and forgets the handle.
func (h *queryHandle) release() {
	h.mu.Lock()
	ev := h.ev
	h.ev = nil
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	if ev != nil {
		C.serf_event_free(ev)
	}
	h.n.qmu.Lock()
	delete(h.n.pending, h)
	h.n.qmu.Unlock()
}

// Respond answers the query (once) with payload. ErrNotFound: already answered or past its
// deadline; ErrTooLarge: the encoded response message (about 41 bytes more than the payload and
// this node's name) exceeds 1024 bytes, and a shorter answer may still be sent; ErrStopped: the
// node was closed.
func (q *Query) Respond(payload []byte) error {
	const op = "query respond"
	h := q.h
	if h == nil {
		return newError(ErrInvalid, op, "not a query received from Serf.Events")
	}
	n := h.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.ptr == nil {
		return errClosed(op)
	}
	h.mu.Lock()
	if h.ev == nil {
		h.mu.Unlock()
		return newError(ErrNotFound, op, "query %q was already answered or its deadline passed", q.Name)
	}
	err := call(op, func() C.enum_serf_status {
		ptr, size := bytesArg(payload)
		return C.serf_query_respond(n.ptr, h.ev, ptr, size)
	})
	h.mu.Unlock()
	if st, ok := err.(*Error); err == nil || ok && (st.Status == ErrNotFound || st.Status == ErrStopped) {
		h.release() // answered, or answerable no more
	}
	return err
}

// Events is the node's event stream. One goroutine feeds it from libserf's queue; it is closed
// by Close (or once the node stopped by itself and every event was delivered). Read it
// steadily: while it is full, libserf queues events, then drops and counts them
// (DroppedEvents). Every Events call returns the same channel.
func (s *Serf) Events() <-chan Event { return s.n.events }

// pollBatch bounds how many events one drain takes before handing them over.
const pollBatch = 64

// poll is the event goroutine: wait for the event descriptor in the netpoller, drain libserf's
// queue without blocking, then hand the events over outside the drain (a drain must never block:
// closing the waiter waits for it). ptr stays valid until after this goroutine ended (Close
// waits for it before serf_free).
func (n *node) poll(ptr *C.serf_t) {
	defer n.wg.Done()
	defer close(n.events)
	batch := make([]Event, 0, pollBatch)
	for {
		stopped := false
		batch = batch[:0]
		err := n.waiter.wait(func() bool {
			for len(batch) < pollBatch {
				var ev *C.serf_event_t
				switch C.serf_try_event(ptr, &ev) {
				case C.SERF_OK:
					if e := n.convert(ev); e != nil {
						batch = append(batch, e)
					}
				case C.SERF_ERR_TIMEOUT: // the queue is empty
					return len(batch) > 0
				default: // SERF_ERR_STOPPED: shut down, nothing left
					stopped = true
					return true
				}
			}
			return true
		})
		for _, e := range batch {
			select {
			case n.events <- e:
			case <-n.done:
				return // Close frees the undelivered queries' C events
			}
		}
		if stopped || err != nil {
			return
		}
	}
}

// convert copies an owned C event into a Go Event, freeing it except for a query's, which its
// queryHandle keeps for Respond. Unknown kinds give nil.
func (n *node) convert(ev *C.serf_event_t) Event {
	kind := EventType(C.serf_event_type(ev))
	switch kind {
	case EventMemberJoin, EventMemberLeave, EventMemberFailed, EventMemberUpdate, EventMemberReap:
		count := int(C.serf_event_member_count(ev))
		members := make([]Member, 0, count)
		for i := 0; i < count; i++ {
			members = append(members, memberFromC(C.serf_event_member(ev, C.size_t(i))))
		}
		C.serf_event_free(ev)
		return MemberEvent{Type: kind, Members: members}
	case EventUser:
		e := UserEvent{
			LTime:    uint64(C.serf_event_ltime(ev)),
			Name:     C.GoString(C.serf_event_name(ev)),
			Payload:  eventPayload(ev),
			Coalesce: bool(C.serf_event_coalesce(ev)),
		}
		C.serf_event_free(ev)
		return e
	case EventShutdown:
		e := ShutdownEvent{Reason: C.GoString(C.serf_event_shutdown_reason(ev))}
		C.serf_event_free(ev)
		return e
	case EventQuery:
		left := time.Duration(C.serf_event_query_remaining_ms(ev)) * time.Millisecond
		q := &Query{
			LTime:      uint64(C.serf_event_ltime(ev)),
			Name:       C.GoString(C.serf_event_name(ev)),
			Payload:    eventPayload(ev),
			ID:         uint32(C.serf_event_query_id(ev)),
			SourceNode: C.GoString(C.serf_event_query_source(ev)),
			Deadline:   time.Now().Add(left),
		}
		h := &queryHandle{n: n, ev: ev}
		q.h = h
		n.qmu.Lock()
		if n.qclosed {
			n.qmu.Unlock()
			h.ev = nil
			C.serf_event_free(ev)
			return q
		}
		n.pending[h] = struct{}{}
		n.qmu.Unlock()
		h.mu.Lock()
		h.timer = time.AfterFunc(left, h.release)
		h.mu.Unlock()
		return q
	}
	C.serf_event_free(ev)
	return nil
}

// eventPayload copies a user event's or query's payload (never nil for those).
func eventPayload(ev *C.serf_event_t) []byte {
	var size C.size_t
	p := C.serf_event_payload(ev, &size)
	if p == nil || size == 0 {
		return []byte{}
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(size))
}
