package serf

// #include <serf.h>
// #include <stdlib.h>
import "C"

import (
	"time"
	"unsafe"
)

// Coordinate is a Vivaldi network coordinate (HashiCorp's coordinate.Coordinate).
type Coordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

func coordinateFromC(c *C.serf_coordinate) Coordinate {
	vec := make([]float64, C.SERF_COORDINATE_DIMENSIONS)
	for i := range vec {
		vec[i] = float64(c.vec[i])
	}
	return Coordinate{Vec: vec, Error: float64(c.error), Adjustment: float64(c.adjustment), Height: float64(c.height)}
}

// Coordinate is this node's own network coordinate. ErrNotFound: coordinates are disabled.
func (s *Serf) Coordinate() (Coordinate, error) {
	var c C.serf_coordinate
	err := s.do("coordinate", func(p *C.serf_t) C.enum_serf_status { return C.serf_coordinate_get(p, nil, &c) })
	if err != nil {
		return Coordinate{}, err
	}
	return coordinateFromC(&c), nil
}

// CachedCoordinate is the coordinate this node last learned for another member.
// ErrNotFound: none is known yet (or coordinates are disabled).
func (s *Serf) CachedCoordinate(node string) (Coordinate, error) {
	cn, err := cstr("coordinate", "node", node)
	if err != nil {
		return Coordinate{}, err
	}
	defer C.free(unsafe.Pointer(cn))
	var c C.serf_coordinate
	err = s.do("coordinate", func(p *C.serf_t) C.enum_serf_status { return C.serf_coordinate_get(p, cn, &c) })
	if err != nil {
		return Coordinate{}, err
	}
	return coordinateFromC(&c), nil
}

// RTT estimates the round-trip time between this node and node from their coordinates (as
// `serf rtt`). ErrNotFound: a coordinate is not known yet.
func (s *Serf) RTT(node string) (time.Duration, error) {
	local, err := cstr("rtt", "node", s.n.name)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(local))
	cn, err := cstr("rtt", "node", node)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cn))
	var secs C.double
	err = s.do("rtt", func(p *C.serf_t) C.enum_serf_status { return C.serf_rtt(p, local, cn, &secs) })
	if err != nil {
		return 0, err
	}
	return time.Duration(float64(secs) * float64(time.Second)), nil
}
