// Package serf embeds a HashiCorp Serf node (gossip membership, failure detection, user events
// and queries, wire-compatible with HashiCorp's agents) in a Go program through libserf's C ABI.
//
// A node is created with [Create] and released with [Serf.Close]:
//
//	s, err := serf.Create(serf.Config{NodeName: "web-1", BindAddr: "127.0.0.1", BindPort: 7946})
//	if err != nil { ... }
//	defer s.Close()
//	if _, err := s.Join([]string{"10.0.0.5:7946"}, false); err != nil { ... }
//	for ev := range s.Events() { ... }
//
// # Linking
//
// By default the package finds libserf through pkg-config (`#cgo pkg-config: serf`), which works
// after `make install` (set PKG_CONFIG_PATH when building if the prefix is not a system one; the
// installed serf.pc then carries an rpath, so programs run without LD_LIBRARY_PATH). To build against a
// libserf checkout without installing it, build with the tag libserf_inrepo: the package then
// uses ../../include and ../../target/release (run `make build` first), with an rpath to the
// latter so tests and programs run in place:
//
//	go test -tags libserf_inrepo ./...
//
// # Versions
//
// This is version 0.3.0 of the package, written against libserf 0.3: it refuses to build with
// an older serf.h, and [Version] reports the library actually linked.
//
// # Conventions
//
// Every failure of the C library is an [*Error] wrapping a [Status], so errors.Is(err,
// serf.ErrStopped) and friends work. Close is the primary way to release a node (a finalizer is
// only a backstop); after Close every call returns ErrStopped. Events arrive on the channel
// returned by [Serf.Events], fed by one goroutine that waits on libserf's event descriptor in
// Go's netpoller (no OS thread is parked). Queries honour their context's deadline and
// cancellation. All methods are safe for concurrent use.
package serf
