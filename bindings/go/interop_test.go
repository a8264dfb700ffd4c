package serf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	serf "github.com/libserf/libserf/bindings/go"
)

// referenceSerf is HashiCorp's serf binary built by `make reference` (or $SERF_REFERENCE). A
// missing binary fails the test: interop is part of what this package promises.
func referenceSerf(t *testing.T) string {
	t.Helper()
	path := os.Getenv("SERF_REFERENCE")
	if path == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", "target", "reference", "serf"))
		if err != nil {
			t.Fatal(err)
		}
		path = abs
	}
	if st, err := os.Stat(path); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("the reference HashiCorp agent %s is missing (run `make reference` or set SERF_REFERENCE): %v", path, err)
	}
	return path
}

// freePort is a port free for both TCP and UDP on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

type refAgent struct {
	bin, name, dir string
	port, rpc      int
	cmd            *exec.Cmd
}

func (a *refAgent) gossipAddr() string { return fmt.Sprintf("127.0.0.1:%d", a.port) }
func (a *refAgent) rpcAddr() string    { return fmt.Sprintf("127.0.0.1:%d", a.rpc) }
func (a *refAgent) eventsFile() string { return filepath.Join(a.dir, a.name+".gotest") }

// startAgent runs `serf agent` on loopback with a handler appending "gotest" user events to a
// file and one answering "echo" queries with their payload; the test's cleanup kills it.
func startAgent(t *testing.T, bin, name, dir string) *refAgent {
	t.Helper()
	a := &refAgent{bin: bin, name: name, dir: dir, port: freePort(t), rpc: freePort(t)}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(bin, "agent",
		"-node="+name,
		"-bind="+a.gossipAddr(),
		"-rpc-addr="+a.rpcAddr(),
		"-profile=local",
		"-log-level=debug",
		"-event-handler=user:gotest=cat >> "+a.eventsFile(),
		"-event-handler=query:echo=cat",
	)
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	if err := a.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s log (tail):\n%s", name, b)
			}
		}
	})
	waitUntil(t, 20*time.Second, name+"'s RPC port", func() bool {
		c, err := net.DialTimeout("tcp", a.rpcAddr(), 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		_, err = a.run("members")
		return err == nil
	})
	return a
}

// run is the reference CLI against this agent (Go's flag package wants the flags right after
// the subcommand), bounded to 20 s.
func (a *refAgent) run(cmd string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	full := append([]string{cmd, "-rpc-addr=" + a.rpcAddr()}, args...)
	out, err := exec.CommandContext(ctx, a.bin, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("serf %s: %v: %s", strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

func (a *refAgent) cli(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	out, err := a.run(cmd, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type refMember struct {
	Name   string            `json:"name"`
	Addr   string            `json:"addr"`
	Status string            `json:"status"`
	Tags   map[string]string `json:"tags"`
}

func (a *refAgent) members(t *testing.T) map[string]refMember {
	t.Helper()
	var out struct {
		Members []refMember `json:"members"`
	}
	text := a.cli(t, "members", "-format=json")
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("members JSON %q: %v", text, err)
	}
	m := make(map[string]refMember, len(out.Members))
	for _, mem := range out.Members {
		m[mem.Name] = mem
	}
	return m
}

func TestInteropWithReferenceAgents(t *testing.T) {
	bin := referenceSerf(t)
	dir := t.TempDir()
	refA := startAgent(t, bin, "ref-a", dir)
	refB := startAgent(t, bin, "ref-b", dir)
	refB.cli(t, "join", refA.gossipAddr())

	g := newNode(t, "go-node", func(c *serf.Config) { c.Tags = map[string]string{"lang": "go"} })
	rec := record(g, func(q *serf.Query) []byte {
		if q.Name == "goquery" {
			return append([]byte("go:"), q.Payload...)
		}
		return nil
	})
	n, err := g.Join([]string{refA.gossipAddr(), refB.gossipAddr()}, false)
	if err != nil || n != 2 {
		t.Fatalf("join: contacted %d, %v", n, err)
	}

	// Membership, both ways.
	waitUntil(t, 20*time.Second, "the Go node sees both agents alive", func() bool {
		return allAlive(t, g, "go-node", "ref-a", "ref-b")
	})
	for _, a := range []*refAgent{refA, refB} {
		a := a
		waitUntil(t, 20*time.Second, a.name+" sees go-node alive", func() bool {
			m, ok := a.members(t)["go-node"]
			return ok && m.Status == "alive"
		})
		m := a.members(t)["go-node"]
		if m.Tags["lang"] != "go" || m.Addr != addr(g) {
			t.Fatalf("%s sees go-node as %+v", a.name, m)
		}
	}

	// A user event from Go runs both agents' handlers.
	if err := g.SendEvent("gotest", []byte("from-go"), false); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*refAgent{refA, refB} {
		a := a
		waitUntil(t, 15*time.Second, a.name+" runs its handler", func() bool {
			b, err := os.ReadFile(a.eventsFile())
			// The agent appends a newline to a payload without one before piping it.
			return err == nil && string(b) == "from-go\n"
		})
	}

	// A user event from the reference CLI reaches Events().
	refA.cli(t, "event", "fromref", "ref-payload")
	waitUntil(t, 15*time.Second, "the reference event on the Go node", func() bool {
		evs := rec.userEvents("fromref")
		return len(evs) == 1 && string(evs[0].Payload) == "ref-payload"
	})

	// A query from Go, answered by the agents' echo handlers.
	resp, err := g.Query(context.Background(), "echo", []byte("hello"), &serf.QueryParams{
		FilterNodes: []string{"ref-a", "ref-b"}, RequestAck: true, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, acks := collectQuery(t, resp)
	// `cat` echoes the payload with the newline the agent adds to it.
	if sortedKeys(got) != "ref-a,ref-b" || string(got["ref-a"]) != "hello\n" || string(got["ref-b"]) != "hello\n" {
		t.Fatalf("echo responses %q", got)
	}
	if len(acks) != 2 || !acks["ref-a"] || !acks["ref-b"] {
		t.Fatalf("echo acks %v", acks)
	}

	// A query from the reference CLI, answered by the Go node through Query.Respond.
	out := refB.cli(t, "query", "-format=json", "-timeout=3s", "goquery", "x")
	var qr struct {
		Acks      []string
		Responses map[string]string
	}
	if err := json.Unmarshal([]byte(out), &qr); err != nil {
		t.Fatalf("query JSON %q: %v", out, err)
	}
	if len(qr.Responses) != 1 || qr.Responses["go-node"] != "go:x" {
		t.Fatalf("reference query responses %v", qr.Responses)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Fatalf("respond errors %v", errs)
	}

	// A graceful leave is seen as "left" by the agents.
	if err := g.Leave(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*refAgent{refA, refB} {
		a := a
		waitUntil(t, 20*time.Second, a.name+" sees go-node left", func() bool {
			return a.members(t)["go-node"].Status == "left"
		})
	}
}
