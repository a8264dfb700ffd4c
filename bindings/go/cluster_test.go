package serf_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	serf "github.com/libserf/libserf/bindings/go"
)

func TestJoinMembersAndMemberEvents(t *testing.T) {
	a := newNode(t, "join-a", func(c *serf.Config) { c.Tags = map[string]string{"role": "web"} })
	b := newNode(t, "join-b", nil)
	c := newNode(t, "join-c", nil)
	ra := record(a, nil)
	record(b, nil)
	record(c, nil)
	if a.LocalPort() == 0 || a.LocalPort() == b.LocalPort() {
		t.Fatalf("ports: a %d, b %d", a.LocalPort(), b.LocalPort())
	}
	for _, s := range []*serf.Serf{b, c} {
		n, err := s.Join([]string{addr(a)}, false)
		if err != nil || n != 1 {
			t.Fatalf("join: %d, %v", n, err)
		}
	}
	for _, s := range []*serf.Serf{a, b, c} {
		s := s
		waitUntil(t, 15*time.Second, s.Name()+" sees 3 alive", func() bool {
			return allAlive(t, s, "join-a", "join-b", "join-c")
		})
	}
	ms, err := c.Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if !m.Addr.Equal([]byte{127, 0, 0, 1}) || len(m.Addr) != 4 {
			t.Errorf("%s: addr %v", m.Name, m.Addr)
		}
		if m.ProtocolCur == 0 || m.DelegateCur == 0 || m.DelegateMax < m.DelegateCur {
			t.Errorf("%s: versions %+v", m.Name, m)
		}
		if m.Name == "join-a" {
			if m.Port != a.LocalPort() || m.Tags["role"] != "web" || len(m.Tags) != 1 {
				t.Errorf("join-a as seen by c: %+v", m)
			}
		}
	}
	local, err := b.LocalMember()
	if err != nil || local.Name != "join-b" || local.Port != b.LocalPort() || local.Status != serf.StatusAlive {
		t.Fatalf("local member: %+v, %v", local, err)
	}
	waitUntil(t, 10*time.Second, "a's member-join events for b and c", func() bool {
		return ra.hasMemberEvent(serf.EventMemberJoin, "join-b") && ra.hasMemberEvent(serf.EventMemberJoin, "join-c")
	})
	if got := serf.StatusAlive.String() + serf.StatusLeft.String() + serf.EventMemberJoin.String() + serf.EventQuery.String(); got != "aliveleftmember-joinquery" {
		t.Errorf("names: %q", got)
	}
}

func TestSetTagsReplacesTheWholeSet(t *testing.T) {
	nodes, _ := cluster(t, "tags", 3, nil)
	a := nodes[0]
	if err := a.SetTags(map[string]string{"old": "1", "keep": "x"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"role": "db", "keep": "y", "dc": "west"}
	if err := a.SetTags(want); err != nil {
		t.Fatal(err)
	}
	if err := a.SetTag("extra", "1"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteTag("extra"); err != nil {
		t.Fatal(err)
	}
	for _, s := range nodes[1:] {
		s := s
		waitUntil(t, 10*time.Second, s.Name()+" sees a's new tags", func() bool {
			ms, err := s.Members()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Name == a.Name() {
					return fmt.Sprint(m.Tags) == fmt.Sprint(want)
				}
			}
			return false
		})
	}
	local, err := a.LocalMember()
	if err != nil || fmt.Sprint(local.Tags) != fmt.Sprint(want) {
		t.Fatalf("local tags %v, %v", local.Tags, err)
	}
	big := map[string]string{"big": strings.Repeat("x", 600)}
	if err := a.SetTags(big); !errors.Is(err, serf.ErrTooLarge) {
		t.Fatalf("oversize tags: %v", err)
	}
}

func TestUserEventReachesEveryNodeOnce(t *testing.T) {
	nodes, recs := cluster(t, "ev", 3, nil)
	if err := nodes[1].SendEvent("deploy", []byte("v1.2.3"), false); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		r := r
		waitUntil(t, 10*time.Second, fmt.Sprintf("node %d gets the event", i), func() bool {
			return len(r.userEvents("deploy")) > 0
		})
	}
	time.Sleep(time.Second) // time for a duplicate to show up, if any would
	for i, r := range recs {
		got := r.userEvents("deploy")
		if len(got) != 1 {
			t.Fatalf("node %d got %d deploy events", i, len(got))
		}
		e := got[0]
		if string(e.Payload) != "v1.2.3" || e.Coalesce || e.LTime == 0 || e.EventType() != serf.EventUser || e.String() != "user-event: deploy" {
			t.Fatalf("node %d: %+v", i, e)
		}
	}
	if d := nodes[0].DroppedEvents(); d != 0 {
		t.Fatalf("dropped %d events", d)
	}
}

// collectQuery reads a query's channels until both are closed (bounded by 10 s).
func collectQuery(t *testing.T, resp *serf.QueryResponse) (map[string][]byte, map[string]bool) {
	t.Helper()
	got := map[string][]byte{}
	acks := map[string]bool{}
	timeout := time.After(10 * time.Second)
	respCh, ackCh := resp.Responses(), resp.Acks()
	for respCh != nil || ackCh != nil {
		select {
		case r, ok := <-respCh:
			if !ok {
				respCh = nil
				continue
			}
			if _, dup := got[r.From]; dup {
				t.Errorf("two responses from %s", r.From)
			}
			got[r.From] = r.Payload
		case a, ok := <-ackCh:
			if !ok {
				ackCh = nil
				continue
			}
			acks[a] = true
		case <-timeout:
			t.Fatal("query did not end")
		}
	}
	return got, acks
}

func TestQueryResponsesAndAcks(t *testing.T) {
	nodes, recs := cluster(t, "q", 3, func(self *serf.Serf, q *serf.Query) []byte {
		if q.Name != "whoami" {
			return nil
		}
		return []byte(self.Name() + ":" + string(q.Payload))
	})
	ask := func(what string, params serf.QueryParams, want string, wantAcks bool) {
		t.Helper()
		start := time.Now()
		resp, err := nodes[0].Query(context.Background(), "whoami", []byte(what), &params)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(resp.Deadline()); d < 4*time.Second || d > 5*time.Second+100*time.Millisecond {
			t.Fatalf("deadline in %v", d)
		}
		got, acks := collectQuery(t, resp)
		if err := resp.Err(); err != nil || !resp.Finished() || resp.Dropped() != 0 {
			t.Fatalf("Err %v, finished %v, dropped %d", err, resp.Finished(), resp.Dropped())
		}
		for name, p := range got {
			if !bytes.Equal(p, []byte(name+":"+what)) {
				t.Fatalf("%s answered %q", name, p)
			}
		}
		ackNames := map[string][]byte{}
		for a := range acks {
			ackNames[a] = nil
		}
		if sortedKeys(got) != want || (wantAcks && sortedKeys(ackNames) != want) || (!wantAcks && len(acks) != 0) {
			t.Fatalf("%s: responses from %s, acks %v, want %s", what, sortedKeys(got), acks, want)
		}
		// libserf ends a query once every node answered: well before its 5 s timeout.
		if el := time.Since(start); el > 4*time.Second {
			t.Fatalf("%s: query took %v", what, el)
		}
	}
	ask("all", serf.QueryParams{Timeout: 5 * time.Second}, "q-0,q-1,q-2", false)
	ask("acked", serf.QueryParams{RequestAck: true, Timeout: 5 * time.Second}, "q-0,q-1,q-2", true)
	ask("filtered", serf.QueryParams{FilterNodes: []string{"q-1", "q-2"}, RequestAck: true, Timeout: 5 * time.Second}, "q-1,q-2", true)
	for i, r := range recs {
		if errs := r.errors(); len(errs) != 0 {
			t.Fatalf("node %d respond errors: %v", i, errs)
		}
	}
}

func TestQueryFilters(t *testing.T) {
	nodes, _ := cluster(t, "qf", 3, func(self *serf.Serf, q *serf.Query) []byte {
		return []byte(self.Name())
	})
	if err := nodes[2].SetTag("role", "db"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "node 0 sees node 2's tag", func() bool {
		ms, _ := nodes[0].Members()
		for _, m := range ms {
			if m.Name == "qf-2" {
				return m.Tags["role"] == "db"
			}
		}
		return false
	})
	collect := func(p *serf.QueryParams) string {
		resp, err := nodes[0].Query(context.Background(), "who", nil, p)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for r := range resp.Responses() {
			got[r.From] = r.Payload
		}
		return sortedKeys(got)
	}
	if got := collect(&serf.QueryParams{FilterNodes: []string{"qf-1"}, Timeout: 3 * time.Second}); got != "qf-1" {
		t.Fatalf("node filter: %s", got)
	}
	if got := collect(&serf.QueryParams{FilterTags: map[string]string{"role": "^d"}, Timeout: 3 * time.Second}); got != "qf-2" {
		t.Fatalf("tag filter: %s", got)
	}
	if _, err := nodes[0].Query(context.Background(), "who", nil, &serf.QueryParams{FilterTags: map[string]string{"role": "("}}); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("bad regexp: %v", err)
	}
}

func TestQueryContextCancel(t *testing.T) {
	nodes, _ := cluster(t, "qc", 3, nil) // nobody answers: the query would run 10 s
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := nodes[0].Query(ctx, "silent", nil, &serf.QueryParams{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if resp.Finished() {
		t.Fatal("finished before cancel")
	}
	cancel()
	start := time.Now()
	select {
	case _, ok := <-resp.Responses():
		if ok {
			t.Fatal("unexpected response")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("responses channel still open 2 s after cancel")
	}
	if _, ok := <-resp.Acks(); ok {
		t.Fatal("acks channel open")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("closing took %v", el)
	}
	if !errors.Is(resp.Err(), context.Canceled) || !resp.Finished() {
		t.Fatalf("Err %v, finished %v", resp.Err(), resp.Finished())
	}
	resp.Close() // after the end: a no-op
	if _, err := nodes[0].Query(ctx, "silent", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("query with a cancelled context: %v", err)
	}
}

func TestQueryContextDeadlineAndTimeout(t *testing.T) {
	nodes, _ := cluster(t, "qd", 3, nil)
	// The context's deadline is sooner than the timeout: it wins.
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	ctxDeadline, _ := ctx.Deadline()
	start := time.Now()
	resp, err := nodes[0].Query(ctx, "silent", nil, &serf.QueryParams{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.Deadline().Sub(ctxDeadline); d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("deadline %v off the context's by %v", resp.Deadline(), d)
	}
	for range resp.Responses() {
		t.Fatal("unexpected response")
	}
	if el := time.Since(start); el < 600*time.Millisecond || el > 2*time.Second {
		t.Fatalf("ended after %v", el)
	}
	if err := resp.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err: %v", err)
	}
	// No timeout set: serf's default (1.6 s here) is sent, the sooner context deadline ends it.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel3()
	ctxDeadline, _ = ctx3.Deadline()
	start = time.Now()
	resp, err = nodes[0].Query(ctx3, "silent", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Deadline().Equal(ctxDeadline) {
		t.Fatalf("deadline %v, the context's %v", resp.Deadline(), ctxDeadline)
	}
	for range resp.Responses() {
		t.Fatal("unexpected response")
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > time.Second {
		t.Fatalf("ended after %v", el)
	}
	if !errors.Is(resp.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err: %v", resp.Err())
	}
	// A context deadline beyond serf's one-hour limit does not matter without a set timeout.
	ctx4, cancel4 := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel4()
	resp, err = nodes[0].Query(ctx4, "silent", nil, &serf.QueryParams{FilterNodes: []string{"nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	// The timeout is sooner than the context's deadline: the query ends on its own, Err is nil.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	start = time.Now()
	resp, err = nodes[0].Query(ctx2, "silent", nil, &serf.QueryParams{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range resp.Responses() {
		t.Fatal("unexpected response")
	}
	if el := time.Since(start); el < 400*time.Millisecond || el > 2*time.Second {
		t.Fatalf("ended after %v", el)
	}
	if resp.Err() != nil {
		t.Fatalf("Err: %v", resp.Err())
	}
	// Close stops collecting at once; Err stays nil.
	resp, err = nodes[0].Query(context.Background(), "silent", nil, &serf.QueryParams{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	resp.Close()
	resp.Close()
	if el := time.Since(start); el > time.Second || !resp.Finished() || resp.Err() != nil {
		t.Fatalf("Close: %v, finished %v, err %v", el, resp.Finished(), resp.Err())
	}
}

func TestRespondRules(t *testing.T) {
	a := newNode(t, "respond-a", nil)
	queries := make(chan *serf.Query, 4)
	go func() {
		for ev := range a.Events() {
			if q, ok := ev.(*serf.Query); ok {
				queries <- q
			}
		}
	}()
	resp, err := a.Query(context.Background(), "self", []byte("p"), &serf.QueryParams{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var q *serf.Query
	select {
	case q = <-queries:
	case <-time.After(5 * time.Second):
		t.Fatal("no query event")
	}
	if q.Name != "self" || string(q.Payload) != "p" || q.SourceNode != "respond-a" || q.EventType() != serf.EventQuery {
		t.Fatalf("query event %+v", q)
	}
	if d := time.Until(q.Deadline); d <= 0 || d > 3*time.Second {
		t.Fatalf("query deadline in %v", d)
	}
	if err := q.Respond(make([]byte, 2000)); !errors.Is(err, serf.ErrTooLarge) {
		t.Fatalf("oversize answer: %v", err)
	}
	if err := q.Respond([]byte("ok")); err != nil {
		t.Fatalf("answer after a refused one: %v", err)
	}
	if err := q.Respond([]byte("again")); !errors.Is(err, serf.ErrNotFound) {
		t.Fatalf("second answer: %v", err)
	}
	r := <-resp.Responses()
	if r.From != "respond-a" || string(r.Payload) != "ok" {
		t.Fatalf("response %+v", r)
	}
	var zero serf.Query
	if err := zero.Respond(nil); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("respond on a made-up query: %v", err)
	}
	// An unanswered query's C event is released at its deadline.
	if _, err := a.Query(context.Background(), "late", nil, &serf.QueryParams{Timeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	late := <-queries
	time.Sleep(time.Until(late.Deadline) + 100*time.Millisecond)
	if err := late.Respond([]byte("late")); !errors.Is(err, serf.ErrNotFound) {
		t.Fatalf("answer past the deadline: %v", err)
	}
}

func TestLeaveIsSeenAsLeft(t *testing.T) {
	nodes, recs := cluster(t, "leave", 3, nil)
	if err := nodes[2].Leave(); err != nil {
		t.Fatal(err)
	}
	for _, s := range nodes[:2] {
		s := s
		waitUntil(t, 15*time.Second, s.Name()+" sees leave-2 left", func() bool {
			return statuses(t, s)["leave-2"] == serf.StatusLeft
		})
	}
	waitUntil(t, 10*time.Second, "a member-leave event", func() bool {
		return recs[0].hasMemberEvent(serf.EventMemberLeave, "leave-2")
	})
	// After a leave the node still answers reads, refuses writes.
	if _, err := nodes[2].Members(); err != nil {
		t.Fatalf("members after leave: %v", err)
	}
	if err := nodes[2].SendEvent("x", nil, false); !errors.Is(err, serf.ErrStopped) {
		t.Fatalf("event after leave: %v", err)
	}
	if err := nodes[2].Leave(); err != nil {
		t.Fatalf("second leave: %v", err)
	}
}

func TestCloseStopsEverythingWithoutLeaks(t *testing.T) {
	runtime.GC()
	base := runtime.NumGoroutine()
	func() {
		a := newNode(t, "close-a", nil)
		b := newNode(t, "close-b", nil)
		ra, rb := record(a, nil), record(b, nil)
		if _, err := b.Join([]string{addr(a)}, false); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "two alive", func() bool { return allAlive(t, a, "close-a", "close-b") })
		// Leave queries in flight and a received query unanswered: Close must end them all.
		_, err := a.Query(context.Background(), "pending", nil, &serf.QueryParams{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err = b.Query(ctx, "pending", nil, &serf.QueryParams{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		for _, s := range []*serf.Serf{a, b} {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal("second Close:", err)
			}
		}
		for _, r := range []*recorder{ra, rb} {
			select {
			case <-r.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("Events channel not closed by Close")
			}
		}
	}()
	var now int
	end := time.Now().Add(10 * time.Second)
	for {
		now = runtime.NumGoroutine()
		if now <= base || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", now, base, buf[:runtime.Stack(buf, true)])
	}
}

func TestFinalizerClosesAForgottenNode(t *testing.T) {
	runtime.GC()
	base := runtime.NumGoroutine()
	var port uint16
	func() {
		s, err := serf.Create(serf.Config{NodeName: "forgotten", BindAddr: "127.0.0.1", Profile: serf.ProfileLocal})
		if err != nil {
			t.Fatal(err)
		}
		port = s.LocalPort()
	}()
	end := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(end) {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("the poller still runs: %d goroutines, %d before", n, base)
	}
	// Its port is free again: the C node was freed, not just the goroutine stopped.
	s := newNode(t, "reuse", func(c *serf.Config) { c.BindPort = int(port) })
	if s.LocalPort() != port {
		t.Fatalf("bound %d, wanted %d", s.LocalPort(), port)
	}
}

func TestKeyManager(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 16)
	const k1b64, k2b64 = "AQEBAQEBAQEBAQEBAQEBAQ==", "AgICAgICAgICAgICAgICAg=="
	var nodes []*serf.Serf
	for i := 0; i < 3; i++ {
		s := newNode(t, fmt.Sprintf("keys-%d", i), func(c *serf.Config) {
			if i%2 == 0 {
				c.Keys = [][]byte{k1}
			} else {
				c.KeysBase64 = []string{k1b64}
			}
		})
		record(s, nil)
		nodes = append(nodes, s)
		if i > 0 {
			if _, err := s.Join([]string{addr(nodes[0])}, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, 15*time.Second, "three alive", func() bool { return allAlive(t, nodes[0], "keys-0", "keys-1", "keys-2") })
	st, err := nodes[0].Stats()
	if err != nil || st["encrypted"] != "true" {
		t.Fatalf("stats %v, %v", st, err)
	}
	km := nodes[0].KeyManager()
	// run expects every node to answer and succeed.
	run := func(what string, op func() (*serf.KeyResponse, error)) *serf.KeyResponse {
		t.Helper()
		resp, err := op()
		if err != nil || resp.NumNodes != 3 || resp.NumResp != 3 || resp.NumErr != 0 {
			t.Fatalf("%s: %+v, %v", what, resp, err)
		}
		return resp
	}
	run("install", func() (*serf.KeyResponse, error) { return km.InstallKey(k2b64) })
	resp := run("list", km.ListKeys)
	if resp.Keys[k1b64] != 3 || resp.Keys[k2b64] != 3 || resp.PrimaryKeys[k1b64] != 3 || len(resp.PrimaryKeys) != 1 {
		t.Fatalf("list: %+v", resp)
	}
	run("use", func() (*serf.KeyResponse, error) { return km.UseKey(k2b64) })
	// Removing the primary key fails on the nodes: the response and an error come back.
	resp, err = km.RemoveKey(k2b64)
	var kerr *serf.KeyError
	if !errors.As(err, &kerr) || resp == nil || resp.NumErr != 3 || resp.NumErr != len(resp.Messages) {
		t.Fatalf("remove the primary: %+v, %v", resp, err)
	}
	run("remove", func() (*serf.KeyResponse, error) { return km.RemoveKey(k1b64) })
	resp = run("list", km.ListKeys)
	if len(resp.Keys) != 1 || resp.Keys[k2b64] != 3 || resp.PrimaryKeys[k2b64] != 3 {
		t.Fatalf("list after rotation: %+v", resp)
	}
	if _, err := km.InstallKey("not base64"); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("bad key: %v", err)
	}
}

func TestCoordinatesRTTAndStats(t *testing.T) {
	nodes, _ := cluster(t, "coord", 3, nil)
	c, err := nodes[0].Coordinate()
	if err != nil || len(c.Vec) != 8 {
		t.Fatalf("coordinate %+v, %v", c, err)
	}
	var rtt time.Duration
	waitUntil(t, 15*time.Second, "an RTT estimate", func() bool {
		rtt, err = nodes[0].RTT("coord-1")
		return err == nil
	})
	if rtt <= 0 || rtt > time.Second {
		t.Fatalf("rtt %v", rtt)
	}
	if _, err := nodes[0].CachedCoordinate("coord-1"); err != nil {
		t.Fatalf("cached coordinate: %v", err)
	}
	if _, err := nodes[0].CachedCoordinate("nobody"); !errors.Is(err, serf.ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}
	st, err := nodes[0].Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st["members"] != "3" || st["failed"] != "0" || st["encrypted"] != "false" || st["member_time"] == "" {
		t.Fatalf("stats %v", st)
	}
	off := newNode(t, "coord-off", func(c *serf.Config) { c.DisableCoordinates = true })
	if _, err := off.Coordinate(); !errors.Is(err, serf.ErrNotFound) {
		t.Fatalf("coordinate with coordinates off: %v", err)
	}
}

func TestForceLeave(t *testing.T) {
	nodes, _ := cluster(t, "force", 3, nil)
	nodes[2].Close() // a crash: no leave
	waitUntil(t, 20*time.Second, "force-2 failed", func() bool {
		return statuses(t, nodes[0])["force-2"] == serf.StatusFailed
	})
	if err := nodes[0].ForceLeave("force-2", true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "force-2 pruned everywhere", func() bool {
		_, on0 := statuses(t, nodes[0])["force-2"]
		_, on1 := statuses(t, nodes[1])["force-2"]
		return !on0 && !on1
	})
	if err := nodes[0].ForceLeave("nobody", false); !errors.Is(err, serf.ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}
}
