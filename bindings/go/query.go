package serf

// #include <serf.h>
// #include <stdlib.h>
import "C"

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// QueryParams shapes a query (HashiCorp's QueryParam). A nil *QueryParams means no filter, no
// acks, no relays and serf's default timeout.
type QueryParams struct {
	// FilterNodes limits the query to these nodes (all nodes when empty).
	FilterNodes []string
	// FilterTags limits it to nodes whose tag matches each regular expression (Go syntax).
	FilterTags map[string]string
	// RequestAck asks the nodes that pass the filters to acknowledge receipt (see Acks).
	RequestAck bool
	// RelayFactor is how many extra members relay each response back (0 to 5).
	RelayFactor uint8
	// Timeout is how long to collect answers (at most an hour); zero means serf's default
	// (gossip interval × 16 × ceil(log10(N+1))). A sooner context deadline wins.
	Timeout time.Duration
}

// NodeResponse is one member's answer to a query.
type NodeResponse struct {
	From    string
	Payload []byte
}

// QueryResponse collects the acks and answers of a query sent with Serf.Query. Both channels are
// closed when the query ends: at its deadline, as soon as every expected node answered, when its
// context is done, or on Close.
type QueryResponse struct {
	deadline  time.Time
	acks      chan string
	responses chan NodeResponse

	stop      chan struct{} // closed by Close
	stopOnce  sync.Once
	finished  atomic.Bool   // set before the channels close
	dropped   atomic.Uint64 // acks and responses that found their channel full
	ended     chan struct{} // closed when the collecting goroutine is done
	mu        sync.Mutex
	err       error
	unwatched chan struct{} // lets the watcher goroutine go when the query ends
}

// Acks delivers the names of nodes that acknowledged the query (with RequestAck). The channel
// is buffered for every member known at query time; acks that find it full are dropped, as in
// HashiCorp's serf, so a slow reader never stalls the others.
func (r *QueryResponse) Acks() <-chan string { return r.acks }

// Responses delivers the answers, with the same buffering and drop rule as Acks.
func (r *QueryResponse) Responses() <-chan NodeResponse { return r.responses }

// Dropped counts the acks and responses discarded because their channel was full (the reader
// did not keep up; HashiCorp's serf drops them the same way).
func (r *QueryResponse) Dropped() uint64 { return r.dropped.Load() }

// Deadline is when the query stops collecting at the latest: its timeout, or the context's
// deadline if sooner.
func (r *QueryResponse) Deadline() time.Time { return r.deadline }

// Finished says whether the query is over (its channels are, or are about to be, closed).
func (r *QueryResponse) Finished() bool { return r.finished.Load() }

// Err is the context's error if the context ended the query before its own end, else nil.
func (r *QueryResponse) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close stops collecting (later answers are discarded) and waits until both channels are
// closed. Idempotent.
func (r *QueryResponse) Close() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.ended
}

// buildParams turns p into C query parameters (free with serf_query_params_free).
func buildParams(p *QueryParams, timeout time.Duration) (*C.serf_query_params_t, error) {
	const op = "query params"
	var cp *C.serf_query_params_t
	if err := call(op, func() C.enum_serf_status { return C.serf_query_params_new(&cp) }); err != nil {
		return nil, err
	}
	err := func() error {
		for _, node := range p.FilterNodes {
			cn, err := cstr(op, "node filter", node)
			if err != nil {
				return err
			}
			err = call(op, func() C.enum_serf_status { return C.serf_query_params_add_node(cp, cn) })
			C.free(unsafe.Pointer(cn))
			if err != nil {
				return err
			}
		}
		for tag, expr := range p.FilterTags {
			ct, err := cstr(op, "tag filter", tag)
			if err != nil {
				return err
			}
			ce, err := cstr(op, "tag filter expression", expr)
			if err != nil {
				C.free(unsafe.Pointer(ct))
				return err
			}
			err = call(op, func() C.enum_serf_status { return C.serf_query_params_add_tag(cp, ct, ce) })
			C.free(unsafe.Pointer(ct))
			C.free(unsafe.Pointer(ce))
			if err != nil {
				return err
			}
		}
		if p.RequestAck {
			if err := call(op, func() C.enum_serf_status { return C.serf_query_params_set_request_ack(cp, true) }); err != nil {
				return err
			}
		}
		if p.RelayFactor != 0 {
			if err := call(op, func() C.enum_serf_status {
				return C.serf_query_params_set_relay_factor(cp, C.uint8_t(p.RelayFactor))
			}); err != nil {
				return err
			}
		}
		if timeout != 0 {
			ms, err := durationMS(op, "timeout", timeout)
			if err != nil {
				return err
			}
			return call(op, func() C.enum_serf_status { return C.serf_query_params_set_timeout_ms(cp, ms) })
		}
		return nil
	}()
	if err != nil {
		C.serf_query_params_free(cp)
		return nil, err
	}
	return cp, nil
}

// Query sends a query to the members passing params' filters and returns at once; answers
// arrive on the response's channels. The query ends at the sooner of its timeout and ctx's
// deadline, or when ctx is cancelled (then Err reports ctx.Err()). ErrTooLarge: the encoded
// query message (about 100 bytes more than name, payload, filters and this node's name) exceeds
// 1024 bytes.
func (s *Serf) Query(ctx context.Context, name string, payload []byte, params *QueryParams) (*QueryResponse, error) {
	const op = "query"
	if params == nil {
		params = &QueryParams{}
	}
	if params.Timeout < 0 {
		return nil, newError(ErrInvalid, op, "negative timeout (%v)", params.Timeout)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The nodes are told the timeout: the context's deadline shortens a set one. Without a
	// set timeout serf's default goes out, and a sooner context deadline only ends collecting.
	timeout := params.Timeout
	ctxDeadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		left := time.Until(ctxDeadline)
		if left <= 0 {
			return nil, context.DeadlineExceeded
		}
		if timeout != 0 && left < timeout {
			timeout = left
		}
	}
	cp, err := buildParams(params, timeout)
	if err != nil {
		return nil, err
	}
	defer C.serf_query_params_free(cp)
	cn, err := cstr(op, "query name", name)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cn))

	size := s.memberCount()
	if len(params.FilterNodes) > 0 && len(params.FilterNodes) < size {
		size = len(params.FilterNodes)
	}
	size += 8 // slack beyond HashiCorp's exact count: relayed duplicates, joins during the query

	var q *C.serf_query_t
	err = s.do(op, func(p *C.serf_t) C.enum_serf_status {
		ptr, n := bytesArg(payload)
		return C.serf_query(p, cn, ptr, n, cp, &q)
	})
	if err != nil {
		return nil, err
	}
	w, werr := newFDWaiter(C.serf_query_fd(q), "serf-query")
	if werr != nil {
		C.serf_query_free(q)
		return nil, &Error{Status: ErrIO, Op: op, Message: werr.Error()}
	}
	deadline := time.Now().Add(time.Duration(C.serf_query_remaining_ms(q)) * time.Millisecond)
	if hasDeadline && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	}
	r := &QueryResponse{
		deadline:  deadline,
		acks:      make(chan string, size),
		responses: make(chan NodeResponse, size),
		stop:      make(chan struct{}),
		ended:     make(chan struct{}),
		unwatched: make(chan struct{}),
	}
	n := s.n
	n.qmu.Lock()
	if n.qclosed { // Close is under way: it would not know about this query
		n.qmu.Unlock()
		w.close()
		C.serf_query_free(q)
		return nil, errClosed(op)
	}
	n.active[r] = struct{}{}
	n.qmu.Unlock()
	// The end bound is set before the watcher may set its past deadline, never after.
	_ = w.setDeadline(r.deadline.Add(queryGrace))
	go r.watch(ctx, w)
	go r.collect(ctx, n, q, w)
	return r, nil
}

// queryGrace is how long past its deadline a query's descriptor is waited for: libserf reports
// the end through it, this only bounds the wait should that report never come.
const queryGrace = time.Second

// watch interrupts collect's wait when the context is done or Close is called, and exits when
// the query ends by itself.
func (r *QueryResponse) watch(ctx context.Context, w *fdWaiter) {
	select {
	case <-ctx.Done():
	case <-r.stop:
	case <-r.unwatched:
		return
	}
	_ = w.setDeadline(time.Unix(1, 0)) // in the past: the wait returns now
}

// collect is the query's goroutine: wait for its descriptor in the netpoller, drain the updates
// with non-blocking sends (a full channel drops, as HashiCorp's sendResponse does), end on DONE,
// on the context or on Close, then release everything.
func (r *QueryResponse) collect(ctx context.Context, n *node, q *C.serf_query_t, w *fdWaiter) {
	defer func() {
		r.finished.Store(true) // before the channels close: a reader seeing them closed sees it
		close(r.unwatched)
		w.close()
		C.serf_query_free(q)
		close(r.acks)
		close(r.responses)
		n.qmu.Lock()
		delete(n.active, r)
		n.qmu.Unlock()
		close(r.ended)
	}()
	done := false
	drain := func() bool {
		for {
			var u C.serf_query_update
			st := C.serf_query_next(q, 0, &u)
			if st == C.SERF_ERR_TIMEOUT {
				return false // nothing queued: wait for the descriptor
			}
			if st != C.SERF_OK || u.kind == C.SERF_QUERY_DONE {
				done = true
				return true
			}
			from := C.GoString(u.from)
			switch u.kind {
			case C.SERF_QUERY_ACK:
				select {
				case r.acks <- from:
				default:
					r.dropped.Add(1)
				}
			case C.SERF_QUERY_RESPONSE:
				var payload []byte
				if u.payload != nil && u.payload_len > 0 {
					payload = C.GoBytes(unsafe.Pointer(u.payload), C.int(u.payload_len))
				} else {
					payload = []byte{}
				}
				select {
				case r.responses <- NodeResponse{From: from, Payload: payload}:
				default:
					r.dropped.Add(1)
				}
			}
		}
	}
	for !done {
		err := w.wait(drain)
		if err == nil {
			continue
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			select {
			case <-r.stop: // closed by the caller first: not the context's doing
			default:
				r.mu.Lock()
				r.err = ctxErr
				r.mu.Unlock()
			}
		}
		return // cut short, or no end reported by the deadline plus grace
	}
}
