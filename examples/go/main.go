// A small service on libserf's Go binding: it joins a cluster, prints the membership as it
// changes, prints user events ("deploy" ones as "deploying <payload>"), answers queries named
// "echo" with their payload, and leaves gracefully on SIGINT/SIGTERM.
//
//	go build -tags libserf_inrepo -o example . && ./example -node a -bind 127.0.0.1:7946
//	./example -node b -bind 127.0.0.1:7947 -join 127.0.0.1:7946
//	serf event -rpc-addr=... deploy v1.2.3     # or any node's SendEvent
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	serf "github.com/libserf/libserf/bindings/go"
)

// addrList is a flag that may be repeated and takes comma-separated lists.
type addrList []string

func (l *addrList) String() string { return strings.Join(*l, ",") }

func (l *addrList) Set(v string) error {
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			*l = append(*l, a)
		}
	}
	return nil
}

func main() {
	host, _ := os.Hostname()
	node := flag.String("node", host, "node name (unique in the cluster)")
	bind := flag.String("bind", "127.0.0.1:7946", "address to listen on, ip:port (port 0: any free port)")
	var join addrList
	flag.Var(&join, "join", "address of a member to join, ip:port (repeatable, or a comma-separated list)")
	duration := flag.Duration("duration", 0, "leave after this long (0: run until SIGINT/SIGTERM)")
	flag.Parse()

	bindHost, bindPort, err := net.SplitHostPort(*bind)
	if err != nil {
		log.Fatalf("-bind %q: %v", *bind, err)
	}
	port, err := strconv.Atoi(bindPort)
	if err != nil {
		log.Fatalf("-bind %q: bad port", *bind)
	}
	s, err := serf.Create(serf.Config{
		NodeName: *node,
		BindAddr: bindHost,
		BindPort: port,
		Logger: func(level serf.LogLevel, msg string) {
			if level <= serf.LogWarn {
				log.Printf("[%s] %s", level, msg)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Printf("node %s listening on %s:%d\n", s.Name(), bindHost, s.LocalPort())
	if len(join) > 0 {
		n, err := s.Join(join, false)
		if err != nil {
			log.Fatalf("join %v: %v", join, err)
		}
		fmt.Printf("joined through %d of %d address(es)\n", n, len(join))
	}
	printMembers(s)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return
			}
			handle(s, ev)
		case sig := <-stop:
			fmt.Printf("%v: leaving\n", sig)
			leave(s)
			return
		case <-ctx.Done():
			fmt.Println("time is up: leaving")
			leave(s)
			return
		}
	}
}

func handle(s *serf.Serf, ev serf.Event) {
	switch e := ev.(type) {
	case serf.MemberEvent:
		for _, m := range e.Members {
			fmt.Printf("%s: %s %s:%d\n", e.Type, m.Name, m.Addr, m.Port)
		}
		printMembers(s)
	case serf.UserEvent:
		if e.Name == "deploy" {
			fmt.Printf("deploying %s\n", e.Payload)
		} else {
			fmt.Printf("user event %q: %q\n", e.Name, e.Payload)
		}
	case *serf.Query:
		if e.Name == "echo" {
			if err := e.Respond(e.Payload); err != nil {
				log.Printf("answering echo from %s: %v", e.SourceNode, err)
			} else {
				fmt.Printf("answered echo from %s\n", e.SourceNode)
			}
		}
	case serf.ShutdownEvent:
		fmt.Printf("node stopped: %s\n", e.Reason)
	}
}

func printMembers(s *serf.Serf) {
	members, err := s.Members()
	if err != nil {
		log.Printf("members: %v", err)
		return
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	fmt.Printf("members (%d):\n", len(members))
	for _, m := range members {
		fmt.Printf("  %-16s %s:%d %-8s %v\n", m.Name, m.Addr, m.Port, m.Status, m.Tags)
	}
}

func leave(s *serf.Serf) {
	done := make(chan error, 1)
	go func() { done <- s.Leave() }()
	select {
	case err := <-done:
		if err != nil {
			log.Printf("leave: %v", err)
		}
	case <-time.After(10 * time.Second):
		log.Print("leave: still waiting after 10 s; closing")
	}
}
