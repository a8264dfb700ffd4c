//go:build libserf_inrepo

package serf

// With -tags libserf_inrepo: the header and library of the surrounding libserf checkout (`make
// build`), with an rpath so binaries and tests run without installing anything.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -lserf -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
