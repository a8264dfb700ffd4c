package serf

// #include <serf.h>
// #include <stdlib.h>
import "C"

import (
	"fmt"
	"net"
	"strings"
	"time"
	"unsafe"
)

// DefaultPort is Serf's usual gossip port (UDP and TCP). Config.BindPort zero means "any free
// port" (as in memberlist), so set it explicitly to join a cluster on the usual port.
const DefaultPort = 7946

// Fails to compile if serf.h ever disagrees with DefaultPort.
const _ = uint(DefaultPort-C.SERF_DEFAULT_PORT) + uint(C.SERF_DEFAULT_PORT-DefaultPort)

// Profile selects a set of timings, as memberlist's DefaultLANConfig/WANConfig/LocalConfig.
type Profile uint32

// The timing profiles.
const (
	// ProfileLAN is HashiCorp's default, for a local network.
	ProfileLAN Profile = C.SERF_PROFILE_LAN
	// ProfileWAN tolerates the latency and loss of wide-area links.
	ProfileWAN Profile = C.SERF_PROFILE_WAN
	// ProfileLocal is for loopback (tests, several nodes on one host): fast probes and gossip.
	ProfileLocal Profile = C.SERF_PROFILE_LOCAL
)

// String names the profile as the agent's -profile flag does.
func (p Profile) String() string {
	switch p {
	case ProfileLAN:
		return "lan"
	case ProfileWAN:
		return "wan"
	case ProfileLocal:
		return "local"
	}
	return fmt.Sprintf("Profile(%d)", uint32(p))
}

// Tuning overrides individual timing knobs of the profile (memberlist's and serf's config
// fields of the same names). A zero field keeps the profile's value. Durations are rounded up to
// whole milliseconds; negative values are refused.
type Tuning struct {
	ProbeInterval       time.Duration
	ProbeTimeout        time.Duration
	GossipInterval      time.Duration
	GossipNodes         int
	GossipToTheDeadTime time.Duration
	IndirectChecks      int
	RetransmitMult      int
	SuspicionMult       int
	// SuspicionMaxTimeoutMult bounds how long suspicion may last, as a multiple of the minimum.
	SuspicionMaxTimeoutMult int
	// PushPullInterval is the period of full state exchanges; see DisablePushPull to turn them off.
	PushPullInterval time.Duration
	// DisablePushPull turns periodic push/pull off (PushPullInterval 0 in memberlist).
	DisablePushPull     bool
	TCPTimeout          time.Duration
	ReapInterval        time.Duration
	ReconnectInterval   time.Duration
	ReconnectTimeout    time.Duration
	TombstoneTimeout    time.Duration
	BroadcastTimeout    time.Duration
	LeavePropagateDelay time.Duration
	// GossipBacklogNodes is libserf's: how many more peers a gossip round may reach while a
	// backlog fills its packets (0 keeps the default, 9; see GoGossipPace).
	GossipBacklogNodes int
	// GoGossipPace gossips exactly as Go's memberlist does (GossipBacklogNodes 0 in libserf).
	GoGossipPace bool
}

// Config says how to create a node. The zero value is usable: the host name as node name, a
// private address of this host on a free port, the LAN profile.
type Config struct {
	// NodeName must be unique in the cluster; empty means the host name.
	NodeName string
	// BindAddr is the IP literal to listen on (UDP and TCP); empty means "0.0.0.0".
	BindAddr string
	// BindPort is the port to listen on; 0 picks a free one (see Serf.LocalPort).
	BindPort int
	// AdvertiseAddr is the IP announced to peers; empty means the bound address, or, for a
	// wildcard bind, this host's first private IPv4 address (as memberlist does).
	AdvertiseAddr string
	// AdvertisePort is the port announced to peers; 0 means the bound port.
	AdvertisePort int
	// Profile selects the timings; the zero value is ProfileLAN.
	Profile Profile
	// Tuning overrides single timings of the profile.
	Tuning Tuning
	// Tags are the node's initial tags (they share memberlist's 512-byte metadata).
	Tags map[string]string
	// Keys are raw AES keys (16, 24 or 32 bytes); any key turns encryption on. The first key of
	// Keys, else of KeysBase64, is the primary one.
	Keys [][]byte
	// KeysBase64 are keys as `serf keygen` prints them, added after Keys.
	KeysBase64 []string
	// KeyringFile is a JSON keyring (Go's -keyring-file): loaded at start if it exists, and
	// rewritten by key operations.
	KeyringFile string
	// Label restricts gossip to nodes with the same label (memberlist 0.3+).
	Label string
	// SnapshotPath is HashiCorp's snapshot file (clocks and members kept across restarts).
	SnapshotPath string
	// RejoinAfterLeave rejoins the snapshot's members even after a graceful leave.
	RejoinAfterLeave bool
	// CoalescePeriod and QuiescentPeriod coalesce member events (both zero: off).
	CoalescePeriod  time.Duration
	QuiescentPeriod time.Duration
	// UserCoalescePeriod and UserQuiescentPeriod coalesce user events sent with coalesce set.
	UserCoalescePeriod  time.Duration
	UserQuiescentPeriod time.Duration
	// ProtocolVersion is the serf protocol version, 2 to 5; zero means libserf's default (4).
	ProtocolVersion uint8
	// EventQueueCapacity is how many events libserf queues before dropping (and counting) new
	// ones; zero means 1024.
	EventQueueCapacity int
	// DisableCoordinates turns Vivaldi network coordinates off.
	DisableCoordinates bool
	// LogLevel is the most verbose level passed to Logger; zero means LogInfo.
	LogLevel LogLevel
	// Logger receives libserf's messages. It may be called from several threads at once and
	// must not call methods of the node it logs for. Nil: nothing is logged.
	Logger func(level LogLevel, message string)
}

// cstr copies s into C memory (free it with C.free). Go strings may hold NUL bytes, which C
// would silently cut: those are refused here.
func cstr(op, what, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, newError(ErrInvalid, op, "%s contains a NUL byte", what)
	}
	return C.CString(s), nil
}

// durationMS converts a non-negative duration to whole milliseconds, rounding up so that a
// positive duration never becomes zero (which often means "off" or "default" in C).
func durationMS(op, what string, d time.Duration) (C.uint64_t, error) {
	if d < 0 {
		return 0, newError(ErrInvalid, op, "%s is negative (%v)", what, d)
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond), nil
}

// configBuilder applies a Config to a serf_config_t, stopping at the first error.
type configBuilder struct {
	cfg *C.serf_config_t
	err error
}

// set runs one setter unless an earlier one failed.
func (b *configBuilder) set(op string, f func() C.enum_serf_status) {
	if b.err == nil {
		b.err = call("config "+op, f)
	}
}

// str runs a setter taking one C string.
func (b *configBuilder) str(op, s string, f func(*C.char) C.enum_serf_status) {
	if b.err != nil {
		return
	}
	cs, err := cstr("config "+op, op, s)
	if err != nil {
		b.err = err
		return
	}
	defer C.free(unsafe.Pointer(cs))
	b.set(op, func() C.enum_serf_status { return f(cs) })
}

// str2 runs a setter taking two C strings (a key and its value).
func (b *configBuilder) str2(op, k, v string, f func(k, v *C.char) C.enum_serf_status) {
	if b.err != nil {
		return
	}
	ck, err := cstr("config "+op, op+" key", k)
	if err != nil {
		b.err = err
		return
	}
	defer C.free(unsafe.Pointer(ck))
	cv, err := cstr("config "+op, op+" value", v)
	if err != nil {
		b.err = err
		return
	}
	defer C.free(unsafe.Pointer(cv))
	b.set(op, func() C.enum_serf_status { return f(ck, cv) })
}

// fail records an error found in Go.
func (b *configBuilder) fail(op, format string, args ...interface{}) {
	if b.err == nil {
		b.err = newError(ErrInvalid, "config "+op, format, args...)
	}
}

// ms converts a duration, recording a negative one as the error.
func (b *configBuilder) ms(op string, d time.Duration) C.uint64_t {
	v, err := durationMS("config "+op, op, d)
	if err != nil && b.err == nil {
		b.err = err
	}
	return v
}

func checkPort(b *configBuilder, op string, port int) {
	if port < 0 || port > 65535 {
		b.fail(op, "port %d out of range 0..65535", port)
	}
}

// apply sets every field of c on b.cfg. The log callback is registered by the caller.
func (b *configBuilder) apply(c *Config) {
	cfg := b.cfg
	if c.NodeName != "" {
		b.str("node name", c.NodeName, func(s *C.char) C.enum_serf_status { return C.serf_config_set_node_name(cfg, s) })
	}
	bind := c.BindAddr
	if bind == "" {
		bind = "0.0.0.0"
	}
	checkPort(b, "bind", c.BindPort)
	checkPort(b, "advertise", c.AdvertisePort)
	b.str("bind", bind, func(s *C.char) C.enum_serf_status {
		return C.serf_config_set_bind(cfg, s, C.uint16_t(c.BindPort))
	})
	advertise := c.AdvertiseAddr
	if advertise == "" && b.err == nil {
		if ip := net.ParseIP(bind); ip != nil && ip.IsUnspecified() {
			priv, err := privateIPv4()
			if err != nil {
				b.fail("advertise", "binding %s needs an AdvertiseAddr: %v", bind, err)
			}
			advertise = priv
		}
	}
	if advertise != "" || c.AdvertisePort != 0 {
		if advertise == "" {
			advertise = bind
		}
		b.str("advertise", advertise, func(s *C.char) C.enum_serf_status {
			return C.serf_config_set_advertise(cfg, s, C.uint16_t(c.AdvertisePort))
		})
	}
	b.set("profile", func() C.enum_serf_status { return C.serf_config_set_profile(cfg, C.uint32_t(c.Profile)) })
	b.tuning(&c.Tuning)
	for k, v := range c.Tags {
		b.str2("tag", k, v, func(ck, cv *C.char) C.enum_serf_status { return C.serf_config_set_tag(cfg, ck, cv) })
	}
	for i, key := range c.Keys {
		if len(key) == 0 {
			b.fail("key", "key %d is empty", i)
			continue
		}
		key := key
		b.set("key", func() C.enum_serf_status {
			return C.serf_config_add_key(cfg, (*C.uint8_t)(unsafe.Pointer(&key[0])), C.size_t(len(key)))
		})
	}
	for _, key := range c.KeysBase64 {
		b.str("key", key, func(s *C.char) C.enum_serf_status { return C.serf_config_add_key_base64(cfg, s) })
	}
	if c.KeyringFile != "" {
		b.str("keyring file", c.KeyringFile, func(s *C.char) C.enum_serf_status { return C.serf_config_set_keyring_file(cfg, s) })
	}
	if c.Label != "" {
		b.str("label", c.Label, func(s *C.char) C.enum_serf_status { return C.serf_config_set_label(cfg, s) })
	}
	if c.SnapshotPath != "" {
		b.str("snapshot path", c.SnapshotPath, func(s *C.char) C.enum_serf_status { return C.serf_config_set_snapshot_path(cfg, s) })
	}
	if c.RejoinAfterLeave {
		b.set("rejoin after leave", func() C.enum_serf_status { return C.serf_config_set_rejoin_after_leave(cfg, true) })
	}
	if c.CoalescePeriod != 0 || c.QuiescentPeriod != 0 {
		p, q := b.ms("coalesce period", c.CoalescePeriod), b.ms("quiescent period", c.QuiescentPeriod)
		b.set("coalesce", func() C.enum_serf_status { return C.serf_config_set_coalesce(cfg, p, q) })
	}
	if c.UserCoalescePeriod != 0 || c.UserQuiescentPeriod != 0 {
		p, q := b.ms("user coalesce period", c.UserCoalescePeriod), b.ms("user quiescent period", c.UserQuiescentPeriod)
		b.set("user coalesce", func() C.enum_serf_status { return C.serf_config_set_user_coalesce(cfg, p, q) })
	}
	if c.ProtocolVersion != 0 {
		b.set("protocol version", func() C.enum_serf_status {
			return C.serf_config_set_protocol_version(cfg, C.uint8_t(c.ProtocolVersion))
		})
	}
	if c.EventQueueCapacity < 0 {
		b.fail("event queue capacity", "negative (%d)", c.EventQueueCapacity)
	} else if c.EventQueueCapacity > 0 {
		b.set("event queue capacity", func() C.enum_serf_status {
			return C.serf_config_set_event_queue_capacity(cfg, C.size_t(c.EventQueueCapacity))
		})
	}
	if c.DisableCoordinates {
		b.set("disable coordinates", func() C.enum_serf_status { return C.serf_config_set_disable_coordinates(cfg, true) })
	}
	level := c.LogLevel
	if level == 0 {
		level = LogInfo
	}
	b.set("log level", func() C.enum_serf_status { return C.serf_config_set_log_level(cfg, C.uint32_t(level)) })
}

// tuning sets the non-zero knobs of t.
func (b *configBuilder) tuning(t *Tuning) {
	durations := []struct {
		knob C.uint32_t
		name string
		d    time.Duration
	}{
		{C.SERF_TUNE_PROBE_INTERVAL_MS, "ProbeInterval", t.ProbeInterval},
		{C.SERF_TUNE_PROBE_TIMEOUT_MS, "ProbeTimeout", t.ProbeTimeout},
		{C.SERF_TUNE_GOSSIP_INTERVAL_MS, "GossipInterval", t.GossipInterval},
		{C.SERF_TUNE_GOSSIP_TO_THE_DEAD_MS, "GossipToTheDeadTime", t.GossipToTheDeadTime},
		{C.SERF_TUNE_PUSH_PULL_INTERVAL_MS, "PushPullInterval", t.PushPullInterval},
		{C.SERF_TUNE_TCP_TIMEOUT_MS, "TCPTimeout", t.TCPTimeout},
		{C.SERF_TUNE_REAP_INTERVAL_MS, "ReapInterval", t.ReapInterval},
		{C.SERF_TUNE_RECONNECT_INTERVAL_MS, "ReconnectInterval", t.ReconnectInterval},
		{C.SERF_TUNE_RECONNECT_TIMEOUT_MS, "ReconnectTimeout", t.ReconnectTimeout},
		{C.SERF_TUNE_TOMBSTONE_TIMEOUT_MS, "TombstoneTimeout", t.TombstoneTimeout},
		{C.SERF_TUNE_BROADCAST_TIMEOUT_MS, "BroadcastTimeout", t.BroadcastTimeout},
		{C.SERF_TUNE_LEAVE_PROPAGATE_DELAY_MS, "LeavePropagateDelay", t.LeavePropagateDelay},
	}
	for _, k := range durations {
		if k.d == 0 {
			continue
		}
		v := b.ms("tuning "+k.name, k.d)
		knob := k.knob
		b.set("tuning "+k.name, func() C.enum_serf_status { return C.serf_config_set_tuning(b.cfg, knob, v) })
	}
	if t.GoGossipPace {
		b.set("tuning GoGossipPace", func() C.enum_serf_status {
			return C.serf_config_set_tuning(b.cfg, C.SERF_TUNE_GOSSIP_BACKLOG_NODES, 0)
		})
	}
	if t.DisablePushPull {
		b.set("tuning DisablePushPull", func() C.enum_serf_status {
			return C.serf_config_set_tuning(b.cfg, C.SERF_TUNE_PUSH_PULL_INTERVAL_MS, 0)
		})
	}
	counts := []struct {
		knob C.uint32_t
		name string
		n    int
	}{
		{C.SERF_TUNE_GOSSIP_NODES, "GossipNodes", t.GossipNodes},
		{C.SERF_TUNE_INDIRECT_CHECKS, "IndirectChecks", t.IndirectChecks},
		{C.SERF_TUNE_RETRANSMIT_MULT, "RetransmitMult", t.RetransmitMult},
		{C.SERF_TUNE_SUSPICION_MULT, "SuspicionMult", t.SuspicionMult},
		{C.SERF_TUNE_SUSPICION_MAX_TIMEOUT_MULT, "SuspicionMaxTimeoutMult", t.SuspicionMaxTimeoutMult},
		{C.SERF_TUNE_GOSSIP_BACKLOG_NODES, "GossipBacklogNodes", t.GossipBacklogNodes},
	}
	for _, k := range counts {
		if k.n == 0 {
			continue
		}
		if k.n < 0 {
			b.fail("tuning "+k.name, "negative (%d)", k.n)
			continue
		}
		knob, v := k.knob, C.uint64_t(k.n)
		b.set("tuning "+k.name, func() C.enum_serf_status { return C.serf_config_set_tuning(b.cfg, knob, v) })
	}
}

// privateIPv4 is this host's first private IPv4 address (RFC 1918 or RFC 6598), the address
// memberlist advertises for a wildcard bind.
func privateIPv4() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	_, cgnat, _ := net.ParseCIDR("100.64.0.0/10")
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip4 := ipn.IP.To4()
		if ip4 != nil && (ip4.IsPrivate() || cgnat.Contains(ip4)) {
			return ip4.String(), nil
		}
	}
	return "", fmt.Errorf("no private IPv4 address found")
}
