package serf_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	serf "github.com/libserf/libserf/bindings/go"
)

func TestConfigErrors(t *testing.T) {
	base := serf.Config{NodeName: "cfg", BindAddr: "127.0.0.1", Profile: serf.ProfileLocal}
	cases := []struct {
		name string
		mod  func(*serf.Config)
		want serf.Status
		op   string
	}{
		{"bind not an IP", func(c *serf.Config) { c.BindAddr = "not-an-ip" }, serf.ErrInvalid, "config bind"},
		{"port out of range", func(c *serf.Config) { c.BindPort = 70000 }, serf.ErrInvalid, "config bind"},
		{"negative duration", func(c *serf.Config) { c.Tuning.ProbeInterval = -time.Second }, serf.ErrInvalid, "config tuning ProbeInterval"},
		{"negative coalesce", func(c *serf.Config) { c.CoalescePeriod = -1 }, serf.ErrInvalid, "config coalesce period"},
		{"negative count", func(c *serf.Config) { c.Tuning.GossipNodes = -1 }, serf.ErrInvalid, "config tuning GossipNodes"},
		{"NUL in name", func(c *serf.Config) { c.NodeName = "a\x00b" }, serf.ErrInvalid, "config node name"},
		{"name too long", func(c *serf.Config) { c.NodeName = strings.Repeat("n", 200) }, serf.ErrTooLarge, "config node name"},
		{"bad UTF-8", func(c *serf.Config) { c.Label = "\xff" }, serf.ErrUTF8, "config label"},
		{"key length", func(c *serf.Config) { c.Keys = [][]byte{make([]byte, 7)} }, serf.ErrInvalid, "config key"},
		{"key base64", func(c *serf.Config) { c.KeysBase64 = []string{"zzz"} }, serf.ErrInvalid, "config key"},
		{"protocol", func(c *serf.Config) { c.ProtocolVersion = 9 }, serf.ErrInvalid, "config protocol version"},
		{"profile", func(c *serf.Config) { c.Profile = 7 }, serf.ErrInvalid, "config profile"},
		{"tags too large", func(c *serf.Config) { c.Tags = map[string]string{"t": strings.Repeat("v", 600)} }, serf.ErrTooLarge, "create"},
	}
	for _, tc := range cases {
		c := base
		tc.mod(&c)
		s, err := serf.Create(c)
		if err == nil {
			s.Close()
			t.Errorf("%s: created", tc.name)
			continue
		}
		var se *serf.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &se) || se.Op != tc.op || se.Message == "" {
			t.Errorf("%s: %#v (%v), want %v from %q", tc.name, err, err, tc.want, tc.op)
		}
	}
	var se *serf.Error
	_, err := serf.Create(serf.Config{BindAddr: "not-an-ip"})
	if !errors.As(err, &se) || !strings.Contains(se.Message, "not-an-ip") || se.Status.Name() != "SERF_ERR_INVALID" ||
		err.Error() != `serf: config bind: "not-an-ip" is not an IP address (SERF_ERR_INVALID)` {
		t.Fatalf("error text: %v", err)
	}
	// A port in use is an I/O error.
	a := newNode(t, "port-a", nil)
	_, err = serf.Create(serf.Config{NodeName: "port-b", BindAddr: "127.0.0.1", BindPort: int(a.LocalPort())})
	if !errors.Is(err, serf.ErrIO) {
		t.Fatalf("port in use: %v", err)
	}
}

func TestCallErrors(t *testing.T) {
	s := newNode(t, "errs", nil)
	record(s, nil)
	if err := s.SendEvent("big", make([]byte, 600), false); !errors.Is(err, serf.ErrTooLarge) {
		t.Fatalf("oversize event: %v", err)
	}
	if _, err := s.Query(context.Background(), "big", make([]byte, 2000), nil); !errors.Is(err, serf.ErrTooLarge) {
		t.Fatalf("oversize query: %v", err)
	}
	if _, err := s.Query(context.Background(), "q", nil, &serf.QueryParams{Timeout: -time.Second}); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("negative timeout: %v", err)
	}
	if _, err := s.Query(context.Background(), "q", nil, &serf.QueryParams{RelayFactor: 9}); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("relay factor: %v", err)
	}
	if _, err := s.Join(nil, false); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("join nothing: %v", err)
	}
	if _, err := s.Join([]string{"127.0.0.1:1"}, false); !errors.Is(err, serf.ErrJoin) {
		t.Fatalf("join refused: %v", err)
	}
	if err := s.SetTag("", "v"); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("empty tag key: %v", err)
	}
	if err := s.SendEvent("a\x00b", nil, false); !errors.Is(err, serf.ErrInvalid) {
		t.Fatalf("NUL in a name: %v", err)
	}
	if !errors.Is(serf.ErrStopped, serf.ErrStopped) || errors.Is(serf.ErrStopped, serf.ErrIO) || serf.ErrTimeout.Error() != "serf: timed out" {
		t.Fatal("Status as an error")
	}
}

// libserf keeps its last error message per OS thread: each error must carry its own call's
// message even with many goroutines failing at once.
func TestErrorMessagesBelongToTheirCall(t *testing.T) {
	s := newNode(t, "msgs", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 8; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				name := fmt.Sprintf("nobody-%d-%d", g, i)
				err := s.ForceLeave(name, false)
				var se *serf.Error
				if !errors.As(err, &se) || se.Status != serf.ErrNotFound || !strings.Contains(se.Message, `"`+name+`"`) {
					errs <- fmt.Errorf("%s: %v", name, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAfterClose(t *testing.T) {
	s, err := serf.Create(serf.Config{NodeName: "closed", BindAddr: "127.0.0.1", Profile: serf.ProfileLocal})
	if err != nil {
		t.Fatal(err)
	}
	port := s.LocalPort()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for i := 0; ; i++ { // events delivered before Close may still be buffered
		if _, ok := <-s.Events(); !ok {
			break
		}
		if i > 100 {
			t.Fatal("Events open after Close")
		}
	}
	stopped := func(what string, err error) {
		t.Helper()
		var se *serf.Error
		if !errors.Is(err, serf.ErrStopped) || !errors.As(err, &se) || se.Op == "" {
			t.Errorf("%s after Close: %v", what, err)
		}
	}
	_, err = s.Members()
	stopped("Members", err)
	_, err = s.LocalMember()
	stopped("LocalMember", err)
	_, err = s.Join([]string{"127.0.0.1:1"}, false)
	stopped("Join", err)
	stopped("SendEvent", s.SendEvent("e", nil, false))
	_, err = s.Query(context.Background(), "q", nil, nil)
	stopped("Query", err)
	stopped("Leave", s.Leave())
	stopped("SetTags", s.SetTags(map[string]string{"a": "b"}))
	stopped("SetTag", s.SetTag("a", "b"))
	stopped("DeleteTag", s.DeleteTag("a"))
	stopped("ForceLeave", s.ForceLeave("x", false))
	_, err = s.Stats()
	stopped("Stats", err)
	_, err = s.Coordinate()
	stopped("Coordinate", err)
	_, err = s.RTT("x")
	stopped("RTT", err)
	_, err = s.KeyManager().ListKeys()
	stopped("ListKeys", err)
	if s.LocalPort() != port || s.DroppedEvents() != 0 {
		t.Fatalf("port %d, dropped %d", s.LocalPort(), s.DroppedEvents())
	}
}

// Close racing calls from other goroutines: every call either works or reports ErrStopped, and
// the race detector sees the handle guarded.
func TestCloseRacingCalls(t *testing.T) {
	for round := 0; round < 3; round++ {
		s, err := serf.Create(serf.Config{NodeName: fmt.Sprintf("race-%d", round), BindAddr: "127.0.0.1", Profile: serf.ProfileLocal})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range s.Events() {
			}
		}()
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		for g := 0; g < 4; g++ {
			g := g
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					var err error
					switch (g + i) % 4 {
					case 0:
						_, err = s.Members()
					case 1:
						err = s.SendEvent("e", []byte("x"), false)
					case 2:
						_, err = s.Stats()
					case 3:
						err = s.SetTag("k", fmt.Sprint(i))
					}
					if err != nil && !errors.Is(err, serf.ErrStopped) {
						errs <- err
					}
				}
			}()
		}
		time.Sleep(time.Duration(round*5) * time.Millisecond)
		s.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}
