package serf

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The Logger gets libserf's messages, and libserf's drop callback releases its cgo.Handle both
// after a successful Close and when Create fails.
func TestLoggerAndItsHandle(t *testing.T) {
	var mu sync.Mutex
	var msgs []string
	logger := func(level LogLevel, msg string) {
		mu.Lock()
		msgs = append(msgs, level.String()+" "+msg)
		mu.Unlock()
	}
	before := atomic.LoadInt64(&liveLoggers)
	s, err := Create(Config{NodeName: "logged", BindAddr: "127.0.0.1", Profile: ProfileLocal, LogLevel: LogDebug, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if got := atomic.LoadInt64(&liveLoggers); got != before+1 {
		t.Fatalf("%d live loggers while the node runs, %d before", got, before)
	}
	if _, err := s.Join([]string{"127.0.0.1:1"}, false); err == nil {
		t.Fatal("join to a closed port worked")
	}
	s.Close()
	if got := atomic.LoadInt64(&liveLoggers); got != before {
		t.Fatalf("%d live loggers after Close, %d before", got, before)
	}
	mu.Lock()
	all := strings.Join(msgs, "\n")
	mu.Unlock()
	if !strings.Contains(all, "logged") || !strings.Contains(all, "DEBUG ") {
		t.Fatalf("log:\n%s", all)
	}
	_, err = Create(Config{NodeName: "logged", BindAddr: "not-an-ip", Logger: logger})
	if err == nil {
		t.Fatal("created")
	}
	_, err = Create(Config{NodeName: "logged", BindAddr: "127.0.0.1", Tags: map[string]string{"t": strings.Repeat("v", 600)}, Logger: logger})
	if err == nil {
		t.Fatal("created with oversize tags")
	}
	if got := atomic.LoadInt64(&liveLoggers); got != before {
		t.Fatalf("%d live loggers after failed creates, %d before", got, before)
	}
}

// A received query's C event is released exactly once whichever comes first; after Close no
// handle is left pending.
func TestQueryEventsAreReleased(t *testing.T) {
	s, err := Create(Config{NodeName: "pending", BindAddr: "127.0.0.1", Profile: ProfileLocal})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		if _, err := s.Query(context.Background(), "q", nil, &QueryParams{Timeout: 200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	var got []*Query
	for len(got) < 3 {
		select {
		case ev := <-s.Events():
			if q, ok := ev.(*Query); ok {
				got = append(got, q)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no query events")
		}
	}
	if err := got[0].Respond([]byte("a")); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		s.n.qmu.Lock()
		defer s.n.qmu.Unlock()
		return len(s.n.pending)
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d pending after one answer", n)
	}
	end := time.Now().Add(3 * time.Second)
	for pending() != 0 && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d pending after the deadlines", n)
	}
}
