// C trampolines for the Go log callback: libserf calls them with a void * context, which carries
// a runtime/cgo.Handle (an integer, never a Go pointer). Kept in C so that Go code never turns an
// integer into an unsafe.Pointer (go vet's rule).
#include <stdint.h>
#include <serf.h>
#include "_cgo_export.h"

static void goserf_log_trampoline(void *ctx, uint32_t level, const char *message) {
    goserfLog((uintptr_t)ctx, level, (char *)message);
}

static void goserf_drop_trampoline(void *ctx) {
    goserfDrop((uintptr_t)ctx);
}

enum serf_status goserf_set_log_callback(serf_config_t *cfg, uintptr_t handle) {
    return serf_config_set_log_callback(cfg, goserf_log_trampoline, goserf_drop_trampoline,
                                        (void *)handle);
}
