//go:build !libserf_inrepo

package serf

// The default: an installed libserf found through its pkg-config file (serf.pc from `make
// install`), like any system library.

// #cgo pkg-config: serf
import "C"
