package serf_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	serf "github.com/libserf/libserf/bindings/go"
)

// newNode starts a node on 127.0.0.1 with a free port and the loopback profile; the test's
// cleanup closes it.
func newNode(t *testing.T, name string, mod func(*serf.Config)) *serf.Serf {
	t.Helper()
	cfg := serf.Config{NodeName: name, BindAddr: "127.0.0.1", Profile: serf.ProfileLocal}
	if mod != nil {
		mod(&cfg)
	}
	s, err := serf.Create(cfg)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addr is the node's gossip address for Join.
func addr(s *serf.Serf) string { return fmt.Sprintf("127.0.0.1:%d", s.LocalPort()) }

// waitUntil polls cond every 50 ms until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statuses maps member name to status as s sees them.
func statuses(t *testing.T, s *serf.Serf) map[string]serf.MemberStatus {
	t.Helper()
	ms, err := s.Members()
	if err != nil {
		t.Fatalf("members of %s: %v", s.Name(), err)
	}
	out := make(map[string]serf.MemberStatus, len(ms))
	for _, m := range ms {
		out[m.Name] = m.Status
	}
	return out
}

// allAlive says whether s sees exactly names, all alive.
func allAlive(t *testing.T, s *serf.Serf, names ...string) bool {
	st := statuses(t, s)
	if len(st) != len(names) {
		return false
	}
	for _, n := range names {
		if st[n] != serf.StatusAlive {
			return false
		}
	}
	return true
}

// recorder consumes a node's Events channel (as an application must), keeps every event and
// answers queries with answer (nil result: no answer).
type recorder struct {
	mu         sync.Mutex
	events     []serf.Event
	respondErr []error
	closed     chan struct{}
}

func record(s *serf.Serf, answer func(q *serf.Query) []byte) *recorder {
	r := &recorder{closed: make(chan struct{})}
	go func() {
		defer close(r.closed)
		for ev := range s.Events() {
			if q, ok := ev.(*serf.Query); ok && answer != nil {
				if reply := answer(q); reply != nil {
					if err := q.Respond(reply); err != nil {
						r.mu.Lock()
						r.respondErr = append(r.respondErr, err)
						r.mu.Unlock()
					}
				}
			}
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

// userEvents are the user events named name received so far.
func (r *recorder) userEvents(name string) []serf.UserEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []serf.UserEvent
	for _, ev := range r.events {
		if u, ok := ev.(serf.UserEvent); ok && u.Name == name {
			out = append(out, u)
		}
	}
	return out
}

// memberEvents lists "type:name" for every member in every member event so far.
func (r *recorder) memberEvents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if m, ok := ev.(serf.MemberEvent); ok {
			for _, mem := range m.Members {
				out = append(out, m.Type.String()+":"+mem.Name)
			}
		}
	}
	return out
}

func (r *recorder) hasMemberEvent(kind serf.EventType, name string) bool {
	want := kind.String() + ":" + name
	for _, e := range r.memberEvents() {
		if e == want {
			return true
		}
	}
	return false
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.respondErr...)
}

// cluster starts n nodes named prefix-0..n-1, each with a recorder answering queries with
// answer, joins them through the first and waits until every node sees every other alive.
func cluster(t *testing.T, prefix string, n int, answer func(self *serf.Serf, q *serf.Query) []byte) ([]*serf.Serf, []*recorder) {
	t.Helper()
	nodes := make([]*serf.Serf, n)
	recs := make([]*recorder, n)
	names := make([]string, n)
	for i := range nodes {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		nodes[i] = newNode(t, names[i], nil)
		self := nodes[i]
		var a func(*serf.Query) []byte
		if answer != nil {
			a = func(q *serf.Query) []byte { return answer(self, q) }
		}
		recs[i] = record(nodes[i], a)
	}
	for _, s := range nodes[1:] {
		got, err := s.Join([]string{addr(nodes[0])}, false)
		if err != nil || got != 1 {
			t.Fatalf("join %s -> %s: contacted %d, err %v", s.Name(), nodes[0].Name(), got, err)
		}
	}
	for _, s := range nodes {
		s := s
		waitUntil(t, 15*time.Second, s.Name()+" sees all alive", func() bool { return allAlive(t, s, names...) })
	}
	return nodes, recs
}

func sortedKeys(m map[string][]byte) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}
