package serf

// #include <serf.h>
// #include <stdlib.h>
// #if SERF_VERSION_MAJOR != 0 || SERF_VERSION_MINOR < 3
// #error "this package needs libserf 0.3 or a later 0.x (serf.h is older)"
// #endif
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
)

// Version is the version of the libserf library linked in ("major.minor.patch").
func Version() string { return C.GoString(C.serf_version()) }

// Serf is a running node. Create it with Create and release it with Close; its methods are safe
// for concurrent use.
//
// Serf is a thin outer shell around the state its goroutines share (node): the event poller and
// timers only reference the inner node, so an unreachable Serf can be finalized (its finalizer
// closes the node as a backstop when Close was forgotten).
type Serf struct {
	n *node
}

// node is everything a Serf's goroutines need. The C handle is guarded by mu: calls hold the read
// lock for the duration of the C call, Close takes the write lock to free it, so a handle is never
// freed under a running call (libserf requires serf_free to be the last call on a handle).
type node struct {
	mu      sync.RWMutex
	ptr     *C.serf_t // nil once closed
	dropped uint64    // serf_dropped_events, kept when closing

	name string // the node's name, for RTT
	port uint16

	events chan Event
	done   chan struct{} // closed by Close: the poller stops delivering
	waiter *fdWaiter     // the event descriptor, in the netpoller
	wg     sync.WaitGroup

	closeOnce sync.Once
	tagsMu    sync.Mutex // SetTags reads then changes the tags: one at a time

	qmu     sync.Mutex
	qclosed bool                        // Close began: nothing new is registered
	pending map[*queryHandle]struct{}   // received queries still answerable
	active  map[*QueryResponse]struct{} // queries sent and still collecting
}

// eventChanSize is the Events channel's buffer; libserf's own queue (Config.EventQueueCapacity)
// is the real buffer, this only smooths the hand-over.
const eventChanSize = 64

// Create configures and starts a node: it binds its sockets and starts gossiping (call Join to
// meet a cluster). Configuration errors are *Error values with Status ErrInvalid (or ErrUTF8,
// ErrTooLarge); a port in use gives ErrIO.
func Create(conf Config) (*Serf, error) {
	var cfg *C.serf_config_t
	if err := call("config", func() C.enum_serf_status { return C.serf_config_new(&cfg) }); err != nil {
		return nil, err
	}
	b := configBuilder{cfg: cfg}
	b.apply(&conf)
	if b.err == nil && conf.Logger != nil {
		b.err = setLogger(cfg, conf.Logger)
	}
	var ptr *C.serf_t
	if b.err == nil {
		b.err = call("create", func() C.enum_serf_status { return C.serf_create(cfg, &ptr) })
	}
	C.serf_config_free(cfg) // the node keeps its own copy (and the logger reference)
	if b.err != nil {
		return nil, b.err
	}
	n, err := newNode(ptr)
	if err != nil {
		C.serf_shutdown(ptr)
		C.serf_free(ptr)
		return nil, err
	}
	s := &Serf{n: n}
	runtime.SetFinalizer(s, func(s *Serf) { s.n.close() })
	return s, nil
}

func newNode(ptr *C.serf_t) (*node, error) {
	n := &node{
		ptr:     ptr,
		events:  make(chan Event, eventChanSize),
		done:    make(chan struct{}),
		pending: make(map[*queryHandle]struct{}),
		active:  make(map[*QueryResponse]struct{}),
	}
	var port C.uint16_t
	if err := call("local port", func() C.enum_serf_status { return C.serf_local_port(ptr, &port) }); err != nil {
		return nil, err
	}
	n.port = uint16(port)
	var self *C.serf_members_t
	if err := call("local member", func() C.enum_serf_status { return C.serf_local_member(ptr, &self) }); err != nil {
		return nil, err
	}
	n.name = C.GoString(C.serf_member_name(C.serf_members_get(self, 0)))
	C.serf_members_free(self)
	w, err := newFDWaiter(C.serf_event_fd(ptr), "serf-events")
	if err != nil {
		return nil, &Error{Status: ErrIO, Op: "create", Message: err.Error()}
	}
	n.waiter = w
	n.wg.Add(1)
	go n.poll(ptr)
	return n, nil
}

// do runs one C call on the live handle (read lock held), or fails with ErrStopped once closed.
func (n *node) do(op string, f func(p *C.serf_t) C.enum_serf_status) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.ptr == nil {
		return errClosed(op)
	}
	return call(op, func() C.enum_serf_status { return f(n.ptr) })
}

// do is node.do keeping s reachable until the C call returned, so the finalizer cannot close the
// node in the middle of it.
func (s *Serf) do(op string, f func(p *C.serf_t) C.enum_serf_status) error {
	err := s.n.do(op, f)
	runtime.KeepAlive(s)
	return err
}

// close is Close's work, run once: stop the node (which makes blocked calls return quickly),
// stop the poller, end queries, then free the handle once no call uses it.
func (n *node) close() {
	n.closeOnce.Do(func() {
		C.serf_shutdown(n.ptr) // thread-safe; ptr is only cleared below, by this goroutine
		close(n.done)
		n.waiter.close() // wakes the poller if it waits for the descriptor
		n.wg.Wait()
		n.qmu.Lock()
		n.qclosed = true
		active := make([]*QueryResponse, 0, len(n.active))
		for r := range n.active {
			active = append(active, r)
		}
		pending := make([]*queryHandle, 0, len(n.pending))
		for h := range n.pending {
			pending = append(pending, h)
		}
		n.qmu.Unlock()
		for _, r := range active {
			r.Close()
		}
		for _, h := range pending {
			h.release()
		}
		n.mu.Lock()
		n.dropped = uint64(C.serf_dropped_events(n.ptr))
		C.serf_free(n.ptr)
		n.ptr = nil
		n.mu.Unlock()
	})
}

// Close stops the node without leaving (call Leave first for a graceful exit: otherwise peers
// see it fail), closes the Events channel, ends queries in flight and frees the C handle. It is
// idempotent and safe to call concurrently with other methods, which then return ErrStopped.
// Do not call it from a Logger.
func (s *Serf) Close() error {
	s.n.close()
	runtime.SetFinalizer(s, nil)
	return nil
}

// LocalPort is the port the node is bound to (useful with Config.BindPort 0).
func (s *Serf) LocalPort() uint16 { return s.n.port }

// Name is the node's name (Config.NodeName, or the host name).
func (s *Serf) Name() string { return s.n.name }

// DroppedEvents counts the events libserf dropped because its queue was full: the application
// did not read Events fast enough (the protocol itself never waits for the reader).
func (s *Serf) DroppedEvents() uint64 {
	n := s.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.ptr == nil {
		return n.dropped
	}
	d := uint64(C.serf_dropped_events(n.ptr))
	runtime.KeepAlive(s)
	return d
}

// Join contacts the given nodes ("ip", "ip:port", "host:port"; the default port is 7946) and
// exchanges state with them; it returns how many answered. ignoreOld skips user events sent
// before the join. ErrJoin: none answered.
func (s *Serf) Join(addrs []string, ignoreOld bool) (int, error) {
	if len(addrs) == 0 {
		return 0, newError(ErrInvalid, "join", "no address given")
	}
	cs := make([]*C.char, 0, len(addrs))
	defer func() {
		for _, c := range cs {
			C.free(unsafe.Pointer(c))
		}
	}()
	for _, a := range addrs {
		c, err := cstr("join", "address", a)
		if err != nil {
			return 0, err
		}
		cs = append(cs, c)
	}
	var contacted C.size_t
	err := s.do("join", func(p *C.serf_t) C.enum_serf_status {
		return C.serf_join(p, &cs[0], C.size_t(len(cs)), C.bool(ignoreOld), &contacted)
	})
	return int(contacted), err
}

// Leave leaves the cluster gracefully and waits for the announcement to spread. The node stays
// readable (members, stats, events) until Close; joins, events, queries and tag changes return
// ErrStopped.
func (s *Serf) Leave() error {
	return s.do("leave", func(p *C.serf_t) C.enum_serf_status { return C.serf_leave(p) })
}

// ForceLeave announces that a failed member left; with prune it is erased from every member
// list. ErrNotFound: no such member.
func (s *Serf) ForceLeave(node string, prune bool) error {
	cn, err := cstr("force leave", "node", node)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cn))
	return s.do("force leave", func(p *C.serf_t) C.enum_serf_status { return C.serf_force_leave(p, cn, C.bool(prune)) })
}

// bytesArg is a payload for the duration of one C call (Go memory, no Go pointers inside).
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// SendEvent broadcasts a user event to every member, this node included. With coalesce, nodes
// that coalesce user events may merge it with later events of the same name. ErrTooLarge: the
// encoded event message (about 30 bytes more than name and payload) exceeds 512 bytes, as in Go:
// a 4-byte name leaves 478 bytes of payload.
func (s *Serf) SendEvent(name string, payload []byte, coalesce bool) error {
	cn, err := cstr("send event", "event name", name)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cn))
	return s.do("send event", func(p *C.serf_t) C.enum_serf_status {
		ptr, n := bytesArg(payload)
		return C.serf_send_event(p, cn, ptr, n, C.bool(coalesce))
	})
}

// Stats reports the node's counters as HashiCorp's Stats does: every value as a string
// ("members": "3", "encrypted": "false", ...).
func (s *Serf) Stats() (map[string]string, error) {
	var text string
	err := s.do("stats", func(p *C.serf_t) C.enum_serf_status {
		var out *C.char
		st := C.serf_stats_json(p, &out)
		if st == C.SERF_OK {
			text = C.GoString(out)
			C.serf_string_free(out)
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	return parseStats(text)
}

// parseStats flattens libserf's JSON counters into strings.
func parseStats(text string) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, newError(ErrInternal, "stats", "unreadable stats JSON: %v", err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var str string
		var num json.Number
		var b bool
		switch {
		case json.Unmarshal(v, &str) == nil:
			out[k] = str
		case json.Unmarshal(v, &num) == nil:
			out[k] = num.String()
		case json.Unmarshal(v, &b) == nil:
			out[k] = strconv.FormatBool(b)
		default:
			out[k] = string(v)
		}
	}
	return out, nil
}

// String identifies the node in logs.
func (s *Serf) String() string {
	return fmt.Sprintf("serf.Serf(%s, port %d)", s.n.name, s.n.port)
}
