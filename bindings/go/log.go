package serf

// #include <serf.h>
// #include <stdint.h>
// enum serf_status goserf_set_log_callback(serf_config_t *cfg, uintptr_t handle);
import "C"

import (
	"runtime/cgo"
	"sync/atomic"
)

// LogLevel is the severity of a libserf message (SERF_LOG_*).
type LogLevel uint32

// The levels, from the least to the most verbose.
const (
	LogError LogLevel = C.SERF_LOG_ERROR
	LogWarn  LogLevel = C.SERF_LOG_WARN
	LogInfo  LogLevel = C.SERF_LOG_INFO
	LogDebug LogLevel = C.SERF_LOG_DEBUG
)

// String names the level as HashiCorp's log prefixes do ("ERR", "WARN", "INFO", "DEBUG").
func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "ERR"
	case LogWarn:
		return "WARN"
	case LogInfo:
		return "INFO"
	case LogDebug:
		return "DEBUG"
	}
	return "OFF"
}

// liveLoggers counts registered Logger handles not yet released by libserf's drop callback
// (tests check it returns to zero: no handle, hence no closure, is leaked).
var liveLoggers int64

// setLogger registers fn as cfg's log callback. C must not hold Go pointers, so it gets a
// cgo.Handle (an integer); libserf's drop callback deletes it once no node logs through it.
func setLogger(cfg *C.serf_config_t, fn func(LogLevel, string)) error {
	h := cgo.NewHandle(fn)
	atomic.AddInt64(&liveLoggers, 1)
	err := call("config log callback", func() C.enum_serf_status {
		return C.goserf_set_log_callback(cfg, C.uintptr_t(h))
	})
	if err != nil { // only for a NULL config; drop did not run
		h.Delete()
		atomic.AddInt64(&liveLoggers, -1)
	}
	return err
}

//export goserfLog
func goserfLog(ctx C.uintptr_t, level C.uint32_t, message *C.char) {
	fn := cgo.Handle(ctx).Value().(func(LogLevel, string))
	fn(LogLevel(level), C.GoString(message))
}

//export goserfDrop
func goserfDrop(ctx C.uintptr_t) {
	cgo.Handle(ctx).Delete()
	atomic.AddInt64(&liveLoggers, -1)
}
