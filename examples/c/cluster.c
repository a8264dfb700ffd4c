/* Three libserf nodes in one process on loopback: join, members, a user event, a query, a leave.
 * Build: make c-examples   Run: target/c/cluster */
#include "serf.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TRY(expr)                                                                           \
    do {                                                                                    \
        serf_status st_ = (expr);                                                           \
        if (st_ != SERF_OK) {                                                               \
            fprintf(stderr, "%s: %s (%s)\n", #expr, serf_status_name(st_),                  \
                    serf_last_error_message());                                             \
            goto out;                                                                       \
        }                                                                                   \
    } while (0)

static serf_t *start(const char *name) {
    serf_config_t *cfg = NULL;
    serf_t *node = NULL;
    if (serf_config_new(&cfg) != SERF_OK) return NULL;
    if (serf_config_set_node_name(cfg, name) != SERF_OK ||
        serf_config_set_bind(cfg, "127.0.0.1", 0) != SERF_OK ||
        serf_config_set_profile(cfg, SERF_PROFILE_LOCAL) != SERF_OK ||
        serf_config_set_tag(cfg, "role", "example") != SERF_OK ||
        serf_create(cfg, &node) != SERF_OK)
        fprintf(stderr, "cannot start %s: %s\n", name, serf_last_error_message());
    serf_config_free(cfg);
    return node;
}

static void print_members(const serf_t *node) {
    serf_members_t *list = NULL;
    size_t i;
    if (serf_members(node, &list) != SERF_OK) return;
    for (i = 0; i < serf_members_count(list); i++) {
        const serf_member_t *m = serf_members_get(list, i);
        printf("  %-8s %s:%u %s role=%s\n", serf_member_name(m), serf_member_addr(m),
               serf_member_port(m), serf_member_status_name(serf_member_status(m)),
               serf_member_tag(m, "role") ? serf_member_tag(m, "role") : "-");
    }
    serf_members_free(list);
}

/* Waits (bounded) for an event of `type` (and, for user events and queries, `name`). */
static serf_event_t *wait_for(const serf_t *node, uint32_t type, const char *name) {
    int i;
    for (i = 0; i < 50; i++) {
        serf_event_t *e = NULL;
        if (serf_poll_event(node, 100, &e) != SERF_OK) continue;
        if (serf_event_type(e) == type && (name == NULL || strcmp(serf_event_name(e), name) == 0))
            return e;
        serf_event_free(e);
    }
    return NULL;
}

int main(void) {
    serf_t *n[3] = {NULL, NULL, NULL};
    serf_event_t *e = NULL;
    serf_query_t *q = NULL;
    serf_query_params_t *params = NULL;
    serf_query_update u;
    char addr[32];
    const char *addrs[1];
    uint16_t port = 0;
    size_t contacted = 0, len = 0;
    int i, rc = 1;

    printf("libserf %s\n", serf_version());
    n[0] = start("alpha");
    n[1] = start("beta");
    n[2] = start("gamma");
    if (!n[0] || !n[1] || !n[2]) goto out;

    TRY(serf_local_port(n[0], &port));
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    addrs[0] = addr;
    TRY(serf_join(n[1], addrs, 1, false, &contacted));
    TRY(serf_join(n[2], addrs, 1, false, &contacted));
    e = wait_for(n[0], SERF_EVENT_MEMBER_JOIN, NULL);
    if (e) printf("alpha saw %s\n", serf_event_type_name(serf_event_type(e)));
    serf_event_free(e);
    e = NULL;
    for (i = 0; i < 50; i++) {
        serf_members_t *list = NULL;
        size_t count = 0;
        if (serf_members(n[0], &list) == SERF_OK) count = serf_members_count(list);
        serf_members_free(list);
        if (count == 3) break;
        {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    printf("members seen by alpha:\n");
    print_members(n[0]);

    TRY(serf_send_event(n[1], "deploy", (const uint8_t *)"v2", 2, false));
    e = wait_for(n[2], SERF_EVENT_USER, "deploy");
    if (e) {
        const uint8_t *p = serf_event_payload(e, &len);
        printf("gamma got user event deploy: %.*s\n", (int)len, (const char *)p);
    }
    serf_event_free(e);
    e = NULL;

    TRY(serf_query_params_new(&params));
    TRY(serf_query_params_set_timeout_ms(params, 2000));
    TRY(serf_query_params_add_node(params, "beta"));
    TRY(serf_query(n[0], "uptime", NULL, 0, params, &q));
    e = wait_for(n[1], SERF_EVENT_QUERY, "uptime");
    if (e) TRY(serf_query_respond(n[1], e, (const uint8_t *)"42s", 3));
    serf_event_free(e);
    e = NULL;
    for (i = 0; i < 20; i++) {
        if (serf_query_next(q, 500, &u) != SERF_OK) continue;
        if (u.kind == SERF_QUERY_DONE) break;
        if (u.kind == SERF_QUERY_RESPONSE)
            printf("query answer from %s: %.*s\n", u.from, (int)u.payload_len, (const char *)u.payload);
    }

    TRY(serf_leave(n[2]));
    printf("gamma left; alpha now sees:\n");
    print_members(n[0]);
    rc = 0;
out:
    serf_event_free(e);
    serf_query_free(q);
    serf_query_params_free(params);
    for (i = 0; i < 3; i++) serf_free(n[i]);
    return rc;
}
