/* A single-threaded event loop: epoll on libserf's event descriptor (and a timer), no threads of
 * our own. Two nodes on loopback; the second sends user events; the first prints everything it
 * gets until it has seen 3 user events or 10 seconds pass.
 * Build: make c-examples   Run: target/c/epoll_events */
#include "serf.h"

#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static serf_t *start(const char *name) {
    serf_config_t *cfg = NULL;
    serf_t *node = NULL;
    if (serf_config_new(&cfg) != SERF_OK) return NULL;
    serf_config_set_node_name(cfg, name);
    serf_config_set_bind(cfg, "127.0.0.1", 0);
    serf_config_set_profile(cfg, SERF_PROFILE_LOCAL);
    if (serf_create(cfg, &node) != SERF_OK)
        fprintf(stderr, "cannot start %s: %s\n", name, serf_last_error_message());
    serf_config_free(cfg);
    return node;
}

int main(void) {
    serf_t *watcher = start("watcher"), *sender = start("sender");
    struct epoll_event ev, ready[4];
    char addr[32];
    const char *addrs[1];
    uint16_t port = 0;
    int ep = -1, user_events = 0, sent = 0, rounds, rc = 1;

    if (!watcher || !sender) goto out;
    serf_local_port(watcher, &port);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    addrs[0] = addr;
    if (serf_join(sender, addrs, 1, false, NULL) != SERF_OK) {
        fprintf(stderr, "join: %s\n", serf_last_error_message());
        goto out;
    }

    ep = epoll_create1(0);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN; /* level-triggered: readable while events are queued */
    ev.data.fd = serf_event_fd(watcher);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0) goto out;

    for (rounds = 0; rounds < 100 && user_events < 3; rounds++) { /* at most ~10 s */
        int n = epoll_wait(ep, ready, 4, 100), i;
        if (n == 0 && sent < 3) { /* idle tick: send the next event */
            char payload[16];
            int len = snprintf(payload, sizeof payload, "tick-%d", sent);
            if (serf_send_event(sender, "tick", (const uint8_t *)payload, (size_t)len, false) == SERF_OK)
                sent++;
        }
        for (i = 0; i < n; i++) {
            serf_event_t *e = NULL;
            /* Drain without blocking: the descriptor stays readable until the queue is empty. */
            while (serf_try_event(watcher, &e) == SERF_OK) {
                uint32_t type = serf_event_type(e);
                if (type == SERF_EVENT_USER) {
                    size_t len = 0;
                    const uint8_t *p = serf_event_payload(e, &len);
                    printf("user event %s: %.*s\n", serf_event_name(e), (int)len, (const char *)p);
                    user_events++;
                } else if (serf_event_member_count(e) > 0) {
                    printf("%s: %s\n", serf_event_type_name(type),
                           serf_member_name(serf_event_member(e, 0)));
                }
                serf_event_free(e);
            }
        }
    }
    printf("%d user events received, %llu dropped\n", user_events,
           (unsigned long long)serf_dropped_events(watcher));
    rc = user_events == 3 ? 0 : 1;
out:
    if (ep >= 0) close(ep);
    serf_free(sender);
    serf_free(watcher);
    return rc;
}
