package serf

// #include <serf.h>
// #include <stdlib.h>
import "C"

import (
	"fmt"
	"net"
	"unsafe"
)

// MemberStatus is a member's state as this node sees it (HashiCorp's MemberStatus).
type MemberStatus int

// The member states.
const (
	StatusNone    MemberStatus = C.SERF_MEMBER_NONE
	StatusAlive   MemberStatus = C.SERF_MEMBER_ALIVE
	StatusLeaving MemberStatus = C.SERF_MEMBER_LEAVING
	StatusLeft    MemberStatus = C.SERF_MEMBER_LEFT
	StatusFailed  MemberStatus = C.SERF_MEMBER_FAILED
)

// String is HashiCorp's text: "alive", "leaving", "left", "failed" or "none".
func (s MemberStatus) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusLeaving:
		return "leaving"
	case StatusLeft:
		return "left"
	case StatusFailed:
		return "failed"
	case StatusNone:
		return "none"
	}
	return fmt.Sprintf("MemberStatus(%d)", int(s))
}

// Member is a snapshot of one cluster member (HashiCorp's serf.Member).
type Member struct {
	Name   string
	Addr   net.IP
	Port   uint16
	Tags   map[string]string
	Status MemberStatus
	// ProtocolMin, ProtocolMax and ProtocolCur are the member's memberlist protocol versions.
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	// DelegateMin, DelegateMax and DelegateCur are its serf protocol versions.
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

// memberFromC copies a member borrowed from a list or an event.
func memberFromC(m *C.serf_member_t) Member {
	ip := net.ParseIP(C.GoString(C.serf_member_addr(m)))
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4 // 4 bytes, as memberlist reports IPv4 peers
	}
	var v [6]C.uint8_t
	C.serf_member_versions(m, &v[0])
	n := int(C.serf_member_tag_count(m))
	tags := make(map[string]string, n)
	for i := 0; i < n; i++ {
		var k, val *C.char
		if C.serf_member_tag_at(m, C.size_t(i), &k, &val) {
			tags[C.GoString(k)] = C.GoString(val)
		}
	}
	return Member{
		Name:        C.GoString(C.serf_member_name(m)),
		Addr:        ip,
		Port:        uint16(C.serf_member_port(m)),
		Tags:        tags,
		Status:      MemberStatus(C.serf_member_status(m)),
		ProtocolMin: uint8(v[0]),
		ProtocolMax: uint8(v[1]),
		ProtocolCur: uint8(v[2]),
		DelegateMin: uint8(v[3]),
		DelegateMax: uint8(v[4]),
		DelegateCur: uint8(v[5]),
	}
}

// Members lists every member this node knows, itself included (failed and left ones until they
// are reaped), sorted by name.
func (s *Serf) Members() ([]Member, error) {
	var out []Member
	err := s.do("members", func(p *C.serf_t) C.enum_serf_status {
		var list *C.serf_members_t
		st := C.serf_members(p, &list)
		if st != C.SERF_OK {
			return st
		}
		n := int(C.serf_members_count(list))
		out = make([]Member, 0, n)
		for i := 0; i < n; i++ {
			out = append(out, memberFromC(C.serf_members_get(list, C.size_t(i))))
		}
		C.serf_members_free(list)
		return st
	})
	return out, err
}

// memberCount is how many members this node knows, without copying them.
func (s *Serf) memberCount() int {
	count := 0
	_ = s.do("members", func(p *C.serf_t) C.enum_serf_status {
		var list *C.serf_members_t
		st := C.serf_members(p, &list)
		if st == C.SERF_OK {
			count = int(C.serf_members_count(list))
			C.serf_members_free(list)
		}
		return st
	})
	return count
}

// LocalMember is this node as the cluster sees it (its tags included).
func (s *Serf) LocalMember() (Member, error) {
	var out Member
	err := s.do("local member", func(p *C.serf_t) C.enum_serf_status {
		var self *C.serf_members_t
		st := C.serf_local_member(p, &self)
		if st == C.SERF_OK {
			out = memberFromC(C.serf_members_get(self, 0))
			C.serf_members_free(self)
		}
		return st
	})
	return out, err
}

// SetTag sets (or replaces) one of this node's tags and gossips the change. ErrTooLarge: the
// encoded tags would exceed 512 bytes (nothing changes).
func (s *Serf) SetTag(key, value string) error {
	s.n.tagsMu.Lock()
	defer s.n.tagsMu.Unlock()
	return s.setTag(key, value)
}

// DeleteTag removes one of this node's tags (no error if it was not set) and gossips the change.
func (s *Serf) DeleteTag(key string) error {
	s.n.tagsMu.Lock()
	defer s.n.tagsMu.Unlock()
	return s.deleteTag(key)
}

// SetTags replaces the node's whole tag set with tags, as HashiCorp's SetTags: keys missing from
// tags are deleted, new or changed ones set. libserf changes one tag at a time, so peers may see
// the intermediate sets briefly; on an error the set is left partly changed.
func (s *Serf) SetTags(tags map[string]string) error {
	s.n.tagsMu.Lock()
	defer s.n.tagsMu.Unlock()
	local, err := s.LocalMember()
	if err != nil {
		return err
	}
	// Deletions first: they only shrink the metadata, which must stay within 512 bytes.
	for k := range local.Tags {
		if _, keep := tags[k]; !keep {
			if err := s.deleteTag(k); err != nil {
				return err
			}
		}
	}
	for k, v := range tags {
		if cur, ok := local.Tags[k]; !ok || cur != v {
			if err := s.setTag(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Serf) setTag(key, value string) error {
	ck, err := cstr("set tag", "tag key", key)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(ck))
	cv, err := cstr("set tag", "tag value", value)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cv))
	return s.do("set tag", func(p *C.serf_t) C.enum_serf_status { return C.serf_set_tag(p, ck, cv) })
}

func (s *Serf) deleteTag(key string) error {
	ck, err := cstr("delete tag", "tag key", key)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(ck))
	return s.do("delete tag", func(p *C.serf_t) C.enum_serf_status { return C.serf_delete_tag(p, ck) })
}
