/* The C test suite for libserf's C ABI. Plain C (also compiled as C++), no framework: each test
 * runs in turn, every CHECK failure is printed, and the last line is "N passed, N failed".
 * Loopback only; every loop is bounded in count and time; everything started is stopped.
 * Usage: test_serf [path to the reference HashiCorp serf binary] */
#include "serf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int g_passed, g_failed, g_current_failed;
static const char *g_reference;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__,   \
                    __LINE__, #cond, serf_last_error_message());                         \
            g_current_failed = 1;                                                        \
        }                                                                                \
    } while (0)
#define CHECK_OK(expr) CHECK((expr) == SERF_OK)
#define CHECK_ST(expr, st) CHECK((expr) == (st))

static void run(const char *name, void (*fn)(void)) {
    g_current_failed = 0;
    fprintf(stderr, "test %s ...\n", name);
    fn();
    if (g_current_failed) {
        g_failed++;
        printf("FAIL %s\n", name);
    } else {
        g_passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* A config for a fast loopback node on a free port. */
static serf_config_t *loopback_config(const char *name) {
    serf_config_t *cfg = NULL;
    if (serf_config_new(&cfg) != SERF_OK) return NULL;
    serf_config_set_node_name(cfg, name);
    serf_config_set_bind(cfg, "127.0.0.1", 0);
    serf_config_set_profile(cfg, SERF_PROFILE_LOCAL);
    serf_config_set_tuning(cfg, SERF_TUNE_LEAVE_PROPAGATE_DELAY_MS, 100);
    return cfg;
}

static serf_t *start(const char *name) {
    serf_config_t *cfg = loopback_config(name);
    serf_t *s = NULL;
    if (cfg == NULL || serf_create(cfg, &s) != SERF_OK) s = NULL;
    serf_config_free(cfg);
    return s;
}

static unsigned short port_of(const serf_t *s) {
    uint16_t p = 0;
    serf_local_port(s, &p);
    return p;
}

static serf_status join_port(const serf_t *s, unsigned short port) {
    char addr[64];
    const char *addrs[1];
    size_t contacted = 0;
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    addrs[0] = addr;
    return serf_join(s, addrs, 1, false, &contacted);
}

static size_t alive_members(const serf_t *s) {
    serf_members_t *list = NULL;
    size_t n = 0, i;
    if (serf_members(s, &list) != SERF_OK) return 0;
    for (i = 0; i < serf_members_count(list); i++)
        if (serf_member_status(serf_members_get(list, i)) == SERF_MEMBER_ALIVE) n++;
    serf_members_free(list);
    return n;
}

static int wait_alive(const serf_t *s, size_t n, int limit_ms) {
    long long end = now_ms() + limit_ms;
    while (now_ms() < end) {
        if (alive_members(s) == n) return 1;
        sleep_ms(50);
    }
    return 0;
}

/* Polls until a user event named `name` arrives (other events are discarded). */
static serf_event_t *wait_user_event(const serf_t *s, const char *name, int limit_ms) {
    long long end = now_ms() + limit_ms;
    while (now_ms() < end) {
        serf_event_t *e = NULL;
        if (serf_poll_event(s, 100, &e) != SERF_OK) continue;
        if (serf_event_type(e) == SERF_EVENT_USER && strcmp(serf_event_name(e), name) == 0) return e;
        serf_event_free(e);
    }
    return NULL;
}

static void drain(const serf_t *s) {
    serf_event_t *e = NULL;
    int i;
    for (i = 0; i < 100000 && serf_try_event(s, &e) == SERF_OK; i++) serf_event_free(e);
}

/* Takes events until none came for 300 ms (bounded). */
static void drain_quiet(const serf_t *s) {
    serf_event_t *e = NULL;
    int i;
    for (i = 0; i < 1000 && serf_poll_event(s, 300, &e) == SERF_OK; i++) serf_event_free(e);
}

static const char BAD_UTF8[] = {'b', 'a', (char)0xff, 'd', 0};

/* ---------------------------------------------------------------------------------------------- */

static void test_version_and_status(void) {
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", SERF_VERSION_MAJOR, SERF_VERSION_MINOR,
             SERF_VERSION_PATCH);
    CHECK(strcmp(serf_version(), expect) == 0);
    CHECK(strcmp(serf_status_name(SERF_OK), "SERF_OK") == 0);
    CHECK(strcmp(serf_status_name(SERF_ERR_TOO_LARGE), "SERF_ERR_TOO_LARGE") == 0);
    CHECK(strcmp(serf_status_name(999), "unknown status") == 0);
    CHECK(serf_last_error_message() != NULL);
    CHECK(strcmp(serf_member_status_name(SERF_MEMBER_FAILED), "failed") == 0);
    CHECK(strcmp(serf_event_type_name(SERF_EVENT_MEMBER_JOIN), "member-join") == 0);
    CHECK(strcmp(serf_event_type_name(12345), "none") == 0);
}

static void test_config_setters(void) {
    serf_config_t *cfg = NULL;
    static const uint8_t key16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    char long_name[300];
    char long_label[300];
    CHECK_OK(serf_config_new(&cfg));
    CHECK(cfg != NULL);
    CHECK_OK(serf_config_set_node_name(cfg, "n1"));
    CHECK_ST(serf_config_set_node_name(cfg, ""), SERF_ERR_INVALID);
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    CHECK_ST(serf_config_set_node_name(cfg, long_name), SERF_ERR_TOO_LARGE);
    CHECK_ST(serf_config_set_node_name(cfg, BAD_UTF8), SERF_ERR_UTF8);
    CHECK(strstr(serf_last_error_message(), "UTF-8") != NULL);
    CHECK_OK(serf_config_set_bind(cfg, "127.0.0.1", 0));
    CHECK_OK(serf_config_set_bind(cfg, "::1", 7946));
    CHECK_ST(serf_config_set_bind(cfg, "not-an-ip", 1), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_advertise(cfg, "127.0.0.1", 0));
    CHECK_OK(serf_config_set_profile(cfg, SERF_PROFILE_WAN));
    CHECK_OK(serf_config_set_profile(cfg, SERF_PROFILE_LAN));
    CHECK_ST(serf_config_set_profile(cfg, 7), SERF_ERR_INVALID);
    {
        unsigned k;
        for (k = SERF_TUNE_PROBE_INTERVAL_MS; k <= SERF_TUNE_GOSSIP_BACKLOG_NODES; k++)
            CHECK_OK(serf_config_set_tuning(cfg, k, 1000));
    }
    CHECK_ST(serf_config_set_tuning(cfg, 0, 1), SERF_ERR_INVALID);
    CHECK_ST(serf_config_set_tuning(cfg, 99, 1), SERF_ERR_INVALID);
    CHECK_ST(serf_config_set_tuning(cfg, SERF_TUNE_GOSSIP_NODES, 0), SERF_ERR_INVALID);
    CHECK_ST(serf_config_set_tuning(cfg, SERF_TUNE_PROBE_INTERVAL_MS, 0), SERF_ERR_INVALID);
    CHECK_ST(serf_config_set_tuning(cfg, SERF_TUNE_TCP_TIMEOUT_MS, UINT64_MAX), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_tuning(cfg, SERF_TUNE_PUSH_PULL_INTERVAL_MS, 0));
    CHECK_OK(serf_config_set_tuning(cfg, SERF_TUNE_GOSSIP_BACKLOG_NODES, 0));
    CHECK_ST(serf_config_set_tuning(cfg, SERF_TUNE_GOSSIP_BACKLOG_NODES, UINT64_MAX), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_tag(cfg, "role", "web"));
    CHECK_ST(serf_config_set_tag(cfg, "", "x"), SERF_ERR_INVALID);
    CHECK_ST(serf_config_set_tag(cfg, "k", BAD_UTF8), SERF_ERR_UTF8);
    CHECK_OK(serf_config_delete_tag(cfg, "role"));
    CHECK_ST(serf_config_delete_tag(cfg, "role"), SERF_ERR_NOT_FOUND);
    CHECK_OK(serf_config_add_key(cfg, key16, sizeof key16));
    CHECK_ST(serf_config_add_key(cfg, key16, 15), SERF_ERR_INVALID);
    CHECK_ST(serf_config_add_key(cfg, NULL, 16), SERF_ERR_NULL);
    CHECK_ST(serf_config_add_key(cfg, key16, (size_t)1 << 40), SERF_ERR_TOO_LARGE);
    CHECK_OK(serf_config_add_key_base64(cfg, "XXo7nB4PKktsjZ4PGis8TQ=="));
    CHECK_ST(serf_config_add_key_base64(cfg, "not base64!"), SERF_ERR_INVALID);
    CHECK_ST(serf_config_add_key_base64(cfg, "AAAA"), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_keyring_file(cfg, "/nonexistent/keyring"));
    CHECK_OK(serf_config_set_label(cfg, "blue"));
    memset(long_label, 'l', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = 0;
    CHECK_ST(serf_config_set_label(cfg, long_label), SERF_ERR_TOO_LARGE);
    CHECK_OK(serf_config_set_snapshot_path(cfg, "/tmp/x.snap"));
    CHECK_OK(serf_config_set_rejoin_after_leave(cfg, true));
    CHECK_OK(serf_config_set_coalesce(cfg, 3000, 1000));
    CHECK_OK(serf_config_set_user_coalesce(cfg, 3000, 1000));
    CHECK_ST(serf_config_set_coalesce(cfg, UINT64_MAX, 1), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_protocol_version(cfg, 5));
    CHECK_ST(serf_config_set_protocol_version(cfg, 1), SERF_ERR_INVALID);
    CHECK_ST(serf_config_set_protocol_version(cfg, 6), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_event_queue_capacity(cfg, 16));
    CHECK_ST(serf_config_set_event_queue_capacity(cfg, 0), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_disable_coordinates(cfg, true));
    CHECK_OK(serf_config_set_log_level(cfg, SERF_LOG_DEBUG));
    CHECK_ST(serf_config_set_log_level(cfg, 9), SERF_ERR_INVALID);
    CHECK_OK(serf_config_set_log_callback(cfg, NULL, NULL, NULL));
    serf_config_free(cfg);
    serf_config_free(NULL);
}

static void test_null_everywhere(void) {
    serf_config_t *cfg = NULL;
    serf_t *s = NULL;
    serf_event_t *e = NULL;
    serf_members_t *ml = NULL;
    serf_members_t *m = NULL;
    serf_query_t *q = NULL;
    serf_query_params_t *qp = NULL;
    serf_key_result_t *kr = NULL;
    serf_query_update u;
    serf_coordinate c;
    const char *k = NULL, *v = NULL;
    size_t len = 7, n = 0;
    uint16_t port;
    double rtt;
    char *json = NULL;
    uint8_t vers[6];
    const char *addrs[1] = {"127.0.0.1:1"};

    CHECK_ST(serf_config_new(NULL), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_node_name(NULL, "x"), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_bind(NULL, "127.0.0.1", 0), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_advertise(NULL, "127.0.0.1", 0), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_profile(NULL, 0), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_tuning(NULL, 1, 1), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_tag(NULL, "a", "b"), SERF_ERR_NULL);
    CHECK_ST(serf_config_delete_tag(NULL, "a"), SERF_ERR_NULL);
    CHECK_ST(serf_config_add_key(NULL, NULL, 0), SERF_ERR_NULL);
    CHECK_ST(serf_config_add_key_base64(NULL, "x"), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_keyring_file(NULL, "x"), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_label(NULL, "x"), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_snapshot_path(NULL, "x"), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_rejoin_after_leave(NULL, true), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_coalesce(NULL, 1, 1), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_user_coalesce(NULL, 1, 1), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_protocol_version(NULL, 4), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_event_queue_capacity(NULL, 4), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_disable_coordinates(NULL, true), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_log_level(NULL, 1), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_log_callback(NULL, NULL, NULL, NULL), SERF_ERR_NULL);

    CHECK_OK(serf_config_new(&cfg));
    CHECK_ST(serf_config_set_node_name(cfg, NULL), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_bind(cfg, NULL, 0), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_tag(cfg, "a", NULL), SERF_ERR_NULL);
    CHECK_ST(serf_config_set_tag(cfg, NULL, "a"), SERF_ERR_NULL);
    CHECK_ST(serf_config_add_key_base64(cfg, NULL), SERF_ERR_NULL);
    CHECK_ST(serf_create(cfg, NULL), SERF_ERR_NULL);
    CHECK_ST(serf_create(NULL, &s), SERF_ERR_NULL);
    CHECK(s == NULL);
    serf_config_free(cfg);

    CHECK_ST(serf_join(NULL, addrs, 1, false, NULL), SERF_ERR_NULL);
    CHECK_ST(serf_leave(NULL), SERF_ERR_NULL);
    CHECK_ST(serf_shutdown(NULL), SERF_ERR_NULL);
    serf_free(NULL);
    CHECK_ST(serf_force_leave(NULL, "x", false), SERF_ERR_NULL);
    CHECK_ST(serf_set_tag(NULL, "a", "b"), SERF_ERR_NULL);
    CHECK_ST(serf_delete_tag(NULL, "a"), SERF_ERR_NULL);
    CHECK_ST(serf_send_event(NULL, "e", NULL, 0, false), SERF_ERR_NULL);
    CHECK_ST(serf_local_port(NULL, &port), SERF_ERR_NULL);
    CHECK_ST(serf_members(NULL, &ml), SERF_ERR_NULL);
    CHECK_ST(serf_local_member(NULL, &m), SERF_ERR_NULL);
    CHECK_ST(serf_poll_event(NULL, 0, &e), SERF_ERR_NULL);
    CHECK_ST(serf_try_event(NULL, &e), SERF_ERR_NULL);
    CHECK(serf_event_fd(NULL) == -1);
    CHECK(serf_dropped_events(NULL) == 0);
    CHECK_ST(serf_query_respond(NULL, NULL, NULL, 0), SERF_ERR_NULL);
    CHECK_ST(serf_set_event_callback(NULL, NULL, NULL, NULL), SERF_ERR_NULL);
    CHECK_ST(serf_query(NULL, "q", NULL, 0, NULL, &q), SERF_ERR_NULL);
    CHECK_ST(serf_key_operation(NULL, SERF_KEY_LIST, NULL, &kr), SERF_ERR_NULL);
    CHECK_ST(serf_stats_json(NULL, &json), SERF_ERR_NULL);
    CHECK_ST(serf_coordinate_get(NULL, NULL, &c), SERF_ERR_NULL);
    CHECK_ST(serf_rtt(NULL, "a", "b", &rtt), SERF_ERR_NULL);
    serf_string_free(NULL);

    serf_members_free(NULL);
    CHECK(serf_members_count(NULL) == 0);
    CHECK(serf_members_get(NULL, 0) == NULL);
    CHECK(serf_member_name(NULL) == NULL);
    CHECK(serf_member_addr(NULL) == NULL);
    CHECK(serf_member_port(NULL) == 0);
    CHECK(serf_member_status(NULL) == SERF_MEMBER_NONE);
    CHECK(!serf_member_versions(NULL, vers));
    CHECK(serf_member_tag_count(NULL) == 0);
    CHECK(!serf_member_tag_at(NULL, 0, &k, &v));
    CHECK(serf_member_tag(NULL, "a") == NULL);

    serf_event_free(NULL);
    CHECK(serf_event_type(NULL) == SERF_EVENT_NONE);
    CHECK(serf_event_member_count(NULL) == 0);
    CHECK(serf_event_member(NULL, 0) == NULL);
    CHECK(serf_event_name(NULL) == NULL);
    CHECK(serf_event_payload(NULL, &len) == NULL && len == 0);
    CHECK(serf_event_payload(NULL, NULL) == NULL);
    CHECK(serf_event_ltime(NULL) == 0);
    CHECK(!serf_event_coalesce(NULL));
    CHECK(serf_event_query_id(NULL) == 0);
    CHECK(serf_event_query_source(NULL) == NULL);
    CHECK(serf_event_query_remaining_ms(NULL) == 0);
    CHECK(serf_event_shutdown_reason(NULL) == NULL);

    CHECK_ST(serf_query_params_new(NULL), SERF_ERR_NULL);
    serf_query_params_free(NULL);
    CHECK_ST(serf_query_params_add_node(NULL, "a"), SERF_ERR_NULL);
    CHECK_ST(serf_query_params_add_tag(NULL, "a", "b"), SERF_ERR_NULL);
    CHECK_ST(serf_query_params_set_request_ack(NULL, true), SERF_ERR_NULL);
    CHECK_ST(serf_query_params_set_relay_factor(NULL, 1), SERF_ERR_NULL);
    CHECK_ST(serf_query_params_set_timeout_ms(NULL, 1), SERF_ERR_NULL);
    CHECK_OK(serf_query_params_new(&qp));
    CHECK_ST(serf_query_params_add_node(qp, NULL), SERF_ERR_NULL);
    CHECK_ST(serf_query_params_add_tag(qp, "a", NULL), SERF_ERR_NULL);
    CHECK_ST(serf_query_params_add_tag(qp, "a", "(unclosed"), SERF_ERR_INVALID);
    CHECK_ST(serf_query_params_set_relay_factor(qp, 6), SERF_ERR_INVALID);
    CHECK_ST(serf_query_params_set_timeout_ms(qp, 4000000), SERF_ERR_INVALID);
    serf_query_params_free(qp);
    CHECK_ST(serf_query_next(NULL, 0, &u), SERF_ERR_NULL);
    CHECK(!serf_query_is_done(NULL));
    CHECK(serf_query_remaining_ms(NULL) == 0);
    CHECK(serf_query_fd(NULL) == -1);
    serf_query_free(NULL);

    serf_key_result_free(NULL);
    CHECK(serf_key_result_num_nodes(NULL) == 0);
    CHECK(serf_key_result_num_responses(NULL) == 0);
    CHECK(serf_key_result_num_errors(NULL) == 0);
    CHECK(serf_key_result_error(NULL) == NULL);
    CHECK(serf_key_result_message_count(NULL) == 0);
    CHECK(!serf_key_result_message_at(NULL, 0, &k, &v));
    CHECK(serf_key_result_key_count(NULL) == 0);
    CHECK(!serf_key_result_key_at(NULL, 0, &k, &n));
    CHECK(serf_key_result_primary_key_count(NULL) == 0);
    CHECK(!serf_key_result_primary_key_at(NULL, 0, &k, &n));
}

static void test_create_errors(void) {
    serf_config_t *cfg = NULL;
    serf_t *a = start("create-a"), *b = NULL;
    char big[600];
    CHECK(a != NULL);
    /* Wildcard bind without an advertise address. */
    CHECK_OK(serf_config_new(&cfg));
    CHECK_OK(serf_config_set_bind(cfg, "0.0.0.0", 0));
    CHECK_ST(serf_create(cfg, &b), SERF_ERR_INVALID);
    CHECK(b == NULL);
    /* The port is taken. */
    CHECK_OK(serf_config_set_bind(cfg, "127.0.0.1", port_of(a)));
    CHECK_ST(serf_create(cfg, &b), SERF_ERR_IO);
    CHECK(b == NULL);
    /* Tags over memberlist's 512-byte metadata. */
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_OK(serf_config_set_bind(cfg, "127.0.0.1", 0));
    CHECK_OK(serf_config_set_tag(cfg, "big", big));
    CHECK_ST(serf_create(cfg, &b), SERF_ERR_TOO_LARGE);
    CHECK(b == NULL);
    serf_config_free(cfg);
    serf_free(a);
}

static void test_single_node(void) {
    serf_t *s = start("solo");
    serf_members_t *mine = NULL;
    const serf_member_t *me = NULL;
    serf_members_t *list = NULL;
    serf_event_t *e = NULL;
    char *json = NULL;
    const char *k = NULL, *v = NULL;
    uint8_t vers[6];
    size_t len = 0;
    const uint8_t *payload;
    struct pollfd pfd;
    static char big[2000];
    serf_coordinate c;
    double rtt = -1;
    CHECK(s != NULL);
    if (s == NULL) return;
    CHECK(port_of(s) != 0);

    CHECK_OK(serf_local_member(s, &mine));
    CHECK(serf_members_count(mine) == 1);
    me = serf_members_get(mine, 0);
    CHECK(strcmp(serf_member_name(me), "solo") == 0);
    CHECK(strcmp(serf_member_addr(me), "127.0.0.1") == 0);
    CHECK(serf_member_port(me) == port_of(s));
    CHECK(serf_member_status(me) == SERF_MEMBER_ALIVE);
    CHECK(serf_member_versions(me, vers));
    CHECK(vers[2] == 2 && vers[5] == 4);
    CHECK(!serf_member_versions(me, NULL));
    CHECK(serf_member_tag_count(me) == 0);
    serf_members_free(mine);

    CHECK_OK(serf_set_tag(s, "role", "db"));
    CHECK_OK(serf_set_tag(s, "dc", "east"));
    CHECK_ST(serf_set_tag(s, "", "x"), SERF_ERR_INVALID);
    CHECK_ST(serf_set_tag(s, BAD_UTF8, "x"), SERF_ERR_UTF8);
    memset(big, 'x', 700);
    big[700] = 0;
    CHECK_ST(serf_set_tag(s, "big", big), SERF_ERR_TOO_LARGE);
    CHECK_OK(serf_delete_tag(s, "dc"));
    CHECK_OK(serf_delete_tag(s, "absent"));
    CHECK_OK(serf_members(s, &list));
    CHECK(serf_members_count(list) == 1);
    CHECK(serf_members_get(list, 1) == NULL);
    {
        const serf_member_t *m = serf_members_get(list, 0);
        CHECK(m != NULL);
        CHECK(serf_member_tag_count(m) == 1);
        CHECK(serf_member_tag(m, "role") != NULL && strcmp(serf_member_tag(m, "role"), "db") == 0);
        CHECK(serf_member_tag(m, "dc") == NULL);
        CHECK(serf_member_tag(m, NULL) == NULL);
        CHECK(serf_member_tag_at(m, 0, &k, &v) && strcmp(k, "role") == 0 && strcmp(v, "db") == 0);
        CHECK(!serf_member_tag_at(m, 1, &k, &v));
        CHECK(!serf_member_tag_at(m, 0, NULL, &v));
    }
    serf_members_free(list);

    drain_quiet(s);
    CHECK_ST(serf_try_event(s, &e), SERF_ERR_TIMEOUT);
    CHECK(e == NULL);
    CHECK_ST(serf_poll_event(s, 20, &e), SERF_ERR_TIMEOUT);
    serf_event_free(e);
    e = NULL;
    CHECK_ST(serf_poll_event(s, 0, NULL), SERF_ERR_NULL);
    pfd.fd = serf_event_fd(s);
    pfd.events = POLLIN;
    pfd.revents = 0;
    CHECK(pfd.fd >= 0);
    CHECK(poll(&pfd, 1, 0) == 0);

    CHECK_OK(serf_send_event(s, "deploy", (const uint8_t *)"v1.2", 4, true));
    CHECK_OK(serf_send_event(s, "empty", NULL, 0, false));
    CHECK_ST(serf_send_event(s, "big", (const uint8_t *)big, 600, false), SERF_ERR_TOO_LARGE);
    CHECK_ST(serf_send_event(s, "huge", (const uint8_t *)big, (size_t)1 << 30, false),
             SERF_ERR_TOO_LARGE);
    CHECK_ST(serf_send_event(s, BAD_UTF8, NULL, 0, false), SERF_ERR_UTF8);
    CHECK_ST(serf_send_event(s, "x", NULL, 3, false), SERF_ERR_NULL);
    CHECK_ST(serf_send_event(s, NULL, NULL, 0, false), SERF_ERR_NULL);
    CHECK(poll(&pfd, 1, 2000) == 1);
    e = wait_user_event(s, "deploy", 3000);
    CHECK(e != NULL);
    if (e) {
        CHECK(serf_event_type(e) == SERF_EVENT_USER);
        payload = serf_event_payload(e, &len);
        CHECK(len == 4 && memcmp(payload, "v1.2", 4) == 0);
        CHECK(serf_event_coalesce(e));
        CHECK(serf_event_ltime(e) >= 1);
        CHECK(serf_event_member_count(e) == 0);
        CHECK(serf_event_query_source(e) == NULL);
        CHECK(serf_event_shutdown_reason(e) == NULL);
        CHECK_ST(serf_query_respond(s, e, NULL, 0), SERF_ERR_INVALID);
        serf_event_free(e);
    }
    e = wait_user_event(s, "empty", 3000);
    CHECK(e != NULL);
    if (e) {
        payload = serf_event_payload(e, &len);
        CHECK(payload != NULL && len == 0);
        CHECK(!serf_event_coalesce(e));
        serf_event_free(e);
    }
    CHECK(serf_dropped_events(s) == 0);

    CHECK_OK(serf_stats_json(s, &json));
    CHECK(json != NULL && strstr(json, "\"members\":1,") != NULL);
    CHECK(json != NULL && strstr(json, "\"encrypted\":false") != NULL);
    serf_string_free(json);
    CHECK_ST(serf_stats_json(s, NULL), SERF_ERR_NULL);

    CHECK_OK(serf_coordinate_get(s, NULL, &c));
    CHECK(c.error > 0);
    CHECK_OK(serf_coordinate_get(s, "solo", &c));
    CHECK_ST(serf_coordinate_get(s, "nobody", &c), SERF_ERR_NOT_FOUND);
    CHECK_ST(serf_coordinate_get(s, BAD_UTF8, &c), SERF_ERR_UTF8);
    CHECK_OK(serf_rtt(s, "solo", "solo", &rtt));
    CHECK(rtt >= 0);
    CHECK_ST(serf_rtt(s, "solo", "nobody", &rtt), SERF_ERR_NOT_FOUND);
    CHECK_ST(serf_force_leave(s, "nobody", false), SERF_ERR_NOT_FOUND);
    CHECK_ST(serf_join(s, NULL, 1, false, NULL), SERF_ERR_NULL);
    {
        const char *bad[1] = {"no such host name.invalid"};
        CHECK_ST(serf_join(s, bad, 0, false, NULL), SERF_ERR_INVALID);
        CHECK(serf_join(s, bad, 1, false, NULL) != SERF_OK);
    }
    serf_free(s);
}

static void test_query_single_node(void) {
    serf_t *s = start("asker");
    serf_query_params_t *p = NULL;
    serf_query_t *q = NULL;
    serf_query_update u;
    serf_event_t *e = NULL;
    int acks = 0, responses = 0, done = 0, i;
    long long end;
    struct pollfd pfd;
    static uint8_t big[2000];
    CHECK(s != NULL);
    if (!s) return;
    CHECK_OK(serf_query_params_new(&p));
    CHECK_OK(serf_query_params_set_request_ack(p, true));
    CHECK_OK(serf_query_params_set_relay_factor(p, 1));
    CHECK_OK(serf_query_params_set_timeout_ms(p, 3000));
    CHECK_OK(serf_query_params_add_node(p, "asker"));
    CHECK_OK(serf_query_params_add_tag(p, "role", ".*"));
    CHECK_ST(serf_query(s, "big", big, sizeof big, p, &q), SERF_ERR_TOO_LARGE);
    CHECK(q == NULL);
    CHECK_ST(serf_query(s, "ping", (const uint8_t *)"hi", 2, p, NULL), SERF_ERR_NULL);
    CHECK_OK(serf_query(s, "ping", (const uint8_t *)"hi", 2, p, &q));
    serf_query_params_free(p);
    CHECK(q != NULL);
    if (!q) {
        serf_free(s);
        return;
    }
    CHECK(serf_query_remaining_ms(q) > 0);
    CHECK(serf_query_fd(q) >= 0);
    /* The asker receives its own query. */
    end = now_ms() + 3000;
    while (e == NULL && now_ms() < end) {
        serf_event_t *x = NULL;
        if (serf_poll_event(s, 100, &x) != SERF_OK) continue;
        if (serf_event_type(x) == SERF_EVENT_QUERY) e = x;
        else serf_event_free(x);
    }
    CHECK(e != NULL);
    if (e) {
        size_t len = 0;
        const uint8_t *pl = serf_event_payload(e, &len);
        CHECK(strcmp(serf_event_name(e), "ping") == 0);
        CHECK(len == 2 && memcmp(pl, "hi", 2) == 0);
        CHECK(strcmp(serf_event_query_source(e), "asker") == 0);
        CHECK(serf_event_query_remaining_ms(e) > 0);
        CHECK_ST(serf_query_respond(s, e, big, sizeof big), SERF_ERR_TOO_LARGE);
        CHECK_OK(serf_query_respond(s, e, (const uint8_t *)"pong", 4));
        CHECK_ST(serf_query_respond(s, e, (const uint8_t *)"pong", 4), SERF_ERR_NOT_FOUND);
        serf_event_free(e);
    }
    pfd.fd = serf_query_fd(q);
    pfd.events = POLLIN;
    CHECK(poll(&pfd, 1, 3000) == 1);
    CHECK_ST(serf_query_next(q, 0, NULL), SERF_ERR_NULL);
    for (i = 0; i < 50 && !done; i++) {
        serf_status st = serf_query_next(q, 500, &u);
        if (st == SERF_ERR_TIMEOUT) continue;
        CHECK_OK(st);
        if (u.kind == SERF_QUERY_ACK) {
            acks++;
            CHECK(strcmp(u.from, "asker") == 0);
            CHECK(u.payload == NULL && u.payload_len == 0);
        } else if (u.kind == SERF_QUERY_RESPONSE) {
            responses++;
            CHECK(strcmp(u.from, "asker") == 0);
            CHECK(u.payload_len == 4 && memcmp(u.payload, "pong", 4) == 0);
        } else if (u.kind == SERF_QUERY_DONE) {
            done = 1;
        }
    }
    CHECK(acks == 1 && responses == 1 && done);
    CHECK(serf_query_is_done(q));
    CHECK_OK(serf_query_next(q, 0, &u));
    CHECK(u.kind == SERF_QUERY_DONE);
    serf_query_free(q);
    serf_free(s);
}

static void test_after_leave_and_shutdown(void) {
    serf_t *s = start("leaver");
    serf_members_t *list = NULL;
    serf_event_t *e = NULL;
    serf_query_t *q = NULL;
    char *json = NULL;
    CHECK(s != NULL);
    if (!s) return;
    CHECK_OK(serf_send_event(s, "before", NULL, 0, false));
    CHECK_OK(serf_leave(s));
    CHECK_OK(serf_leave(s)); /* idempotent, as Go's Leave */
    CHECK_ST(serf_set_tag(s, "a", "b"), SERF_ERR_STOPPED);
    CHECK_ST(serf_force_leave(s, "leaver", false), SERF_ERR_STOPPED);
    {
        serf_key_result_t *r = NULL;
        CHECK_ST(serf_key_operation(s, SERF_KEY_LIST, NULL, &r), SERF_ERR_STOPPED);
        CHECK(r == NULL);
    }
    CHECK_ST(serf_send_event(s, "after", NULL, 0, false), SERF_ERR_STOPPED);
    CHECK_ST(serf_query(s, "q", NULL, 0, NULL, &q), SERF_ERR_STOPPED);
    CHECK(q == NULL);
    CHECK_ST(join_port(s, 1), SERF_ERR_STOPPED);
    CHECK_OK(serf_members(s, &list));
    serf_members_free(list);
    CHECK_OK(serf_stats_json(s, &json));
    serf_string_free(json);
    CHECK_OK(serf_shutdown(s));
    CHECK_OK(serf_shutdown(s));
    CHECK_ST(serf_members(s, &list), SERF_ERR_STOPPED);
    CHECK_ST(serf_set_tag(s, "a", "b"), SERF_ERR_STOPPED);
    /* Queued events stay readable, then the queue reports the stop. */
    {
        int i, stopped = 0;
        for (i = 0; i < 1000 && !stopped; i++) {
            serf_status st = serf_poll_event(s, 50, &e);
            if (st == SERF_OK) serf_event_free(e);
            else stopped = (st == SERF_ERR_STOPPED);
        }
        CHECK(stopped);
    }
    CHECK(strstr(serf_last_error_message(), "shut down") != NULL);
    serf_free(s);
}

static void test_free_order(void) {
    /* Handles obtained from a node outlive it, as documented. */
    serf_t *s = start("orphan");
    serf_members_t *list = NULL;
    serf_members_t *mine = NULL;
    serf_event_t *e = NULL;
    serf_query_t *q = NULL;
    serf_query_update u;
    CHECK(s != NULL);
    if (!s) return;
    CHECK_OK(serf_members(s, &list));
    CHECK_OK(serf_local_member(s, &mine));
    CHECK_OK(serf_send_event(s, "x", NULL, 0, false));
    e = wait_user_event(s, "x", 3000);
    CHECK(e != NULL);
    CHECK_OK(serf_query(s, "q", NULL, 0, NULL, &q));
    serf_free(s);
    CHECK(strcmp(serf_member_name(serf_members_get(list, 0)), "orphan") == 0);
    CHECK(strcmp(serf_member_name(serf_members_get(mine, 0)), "orphan") == 0);
    CHECK(strcmp(serf_event_name(e), "x") == 0);
    {
        int i, done = 0;
        for (i = 0; i < 100 && !done; i++)
            done = serf_query_next(q, 100, &u) == SERF_OK && u.kind == SERF_QUERY_DONE;
        CHECK(done);
    }
    serf_members_free(list);
    serf_members_free(mine);
    serf_event_free(e);
    serf_query_free(q);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    int events, user_events, dropped, logs, joins_logged;
} counter_t;

static void count_event(void *ctx, const serf_event_t *e) {
    counter_t *c = (counter_t *)ctx;
    pthread_mutex_lock(&c->lock);
    c->events++;
    if (serf_event_type(e) == SERF_EVENT_USER) c->user_events++;
    pthread_mutex_unlock(&c->lock);
}

static void count_drop(void *ctx) {
    counter_t *c = (counter_t *)ctx;
    pthread_mutex_lock(&c->lock);
    c->dropped++;
    pthread_mutex_unlock(&c->lock);
}

static void count_log(void *ctx, uint32_t level, const char *message) {
    counter_t *c = (counter_t *)ctx;
    CHECK(message != NULL && strlen(message) > 0);
    pthread_mutex_lock(&c->lock);
    c->logs++;
    /* HashiCorp's serf line, at its level, without the [INFO] tag. */
    if (level == SERF_LOG_INFO && strncmp(message, "serf: EventMemberJoin: ", 23) == 0)
        c->joins_logged++;
    pthread_mutex_unlock(&c->lock);
}

static int read_count(counter_t *c, int which) {
    int v;
    pthread_mutex_lock(&c->lock);
    v = which == 0   ? c->events
        : which == 1 ? c->user_events
        : which == 2 ? c->dropped
        : which == 3 ? c->logs
                     : c->joins_logged;
    pthread_mutex_unlock(&c->lock);
    return v;
}

static void test_three_nodes(void) {
    serf_t *n[3] = {NULL, NULL, NULL};
    serf_config_t *cfg;
    counter_t cb, logc;
    serf_event_t *e = NULL;
    serf_query_params_t *p = NULL;
    serf_query_t *q = NULL;
    serf_query_update u;
    int i, joined_seen = 0, responses = 0;
    long long end;
    pthread_mutex_init(&cb.lock, NULL);
    pthread_mutex_init(&logc.lock, NULL);
    cb.events = cb.user_events = cb.dropped = cb.logs = cb.joins_logged = 0;
    logc = cb;

    cfg = loopback_config("tri-0");
    CHECK_OK(serf_config_set_log_level(cfg, SERF_LOG_DEBUG));
    CHECK_OK(serf_config_set_log_callback(cfg, count_log, count_drop, &logc));
    CHECK_OK(serf_create(cfg, &n[0]));
    serf_config_free(cfg);
    CHECK(read_count(&logc, 2) == 0); /* still used by node 0 */
    CHECK(read_count(&logc, 3) >= 1); /* "listening on" */
    n[1] = start("tri-1");
    n[2] = start("tri-2");
    CHECK(n[0] && n[1] && n[2]);
    if (!(n[0] && n[1] && n[2])) goto out;
    CHECK_OK(join_port(n[1], port_of(n[0])));
    {
        char a0[64], a1[64];
        const char *addrs[2];
        size_t contacted = 0;
        snprintf(a0, sizeof a0, "127.0.0.1:%u", port_of(n[0]));
        snprintf(a1, sizeof a1, "tri-1/127.0.0.1:%u", port_of(n[1]));
        addrs[0] = a0;
        addrs[1] = a1;
        CHECK_OK(serf_join(n[2], addrs, 2, true, &contacted));
        CHECK(contacted == 2);
    }
    for (i = 0; i < 3; i++) CHECK(wait_alive(n[i], 3, 10000));
    /* Node 0 logged the three joins (itself included) through the callback. */
    end = now_ms() + 3000;
    while (read_count(&logc, 4) < 3 && now_ms() < end) sleep_ms(10);
    CHECK(read_count(&logc, 4) >= 3);

    /* Member events on node 0. */
    end = now_ms() + 3000;
    while (joined_seen < 2 && now_ms() < end) {
        if (serf_poll_event(n[0], 100, &e) != SERF_OK) continue;
        if (serf_event_type(e) == SERF_EVENT_MEMBER_JOIN) {
            size_t k;
            for (k = 0; k < serf_event_member_count(e); k++) {
                const char *nm = serf_member_name(serf_event_member(e, k));
                if (strcmp(nm, "tri-1") == 0 || strcmp(nm, "tri-2") == 0) joined_seen++;
            }
            CHECK(serf_event_member(e, serf_event_member_count(e)) == NULL);
        }
        serf_event_free(e);
    }
    CHECK(joined_seen == 2);

    /* Callback on node 2, user event from node 1. */
    CHECK_OK(serf_set_event_callback(n[2], count_event, count_drop, &cb));
    CHECK_OK(serf_send_event(n[1], "hello", (const uint8_t *)"world", 5, false));
    end = now_ms() + 5000;
    while (read_count(&cb, 1) < 1 && now_ms() < end) sleep_ms(20);
    CHECK(read_count(&cb, 1) >= 1);
    e = wait_user_event(n[0], "hello", 5000);
    CHECK(e != NULL);
    serf_event_free(e);
    CHECK_OK(serf_set_event_callback(n[2], NULL, NULL, NULL));
    CHECK(read_count(&cb, 2) == 1); /* drop ran once, before returning */

    /* A query from node 0 filtered to node 1, answered by a responder loop on node 1. */
    drain(n[1]);
    CHECK_OK(serf_query_params_new(&p));
    CHECK_OK(serf_query_params_add_node(p, "tri-1"));
    CHECK_OK(serf_query_params_set_timeout_ms(p, 3000));
    CHECK_OK(serf_query(n[0], "who", NULL, 0, p, &q));
    serf_query_params_free(p);
    end = now_ms() + 3000;
    while (now_ms() < end) {
        if (serf_poll_event(n[1], 100, &e) != SERF_OK) continue;
        if (serf_event_type(e) == SERF_EVENT_QUERY && strcmp(serf_event_name(e), "who") == 0) {
            CHECK(strcmp(serf_event_query_source(e), "tri-0") == 0);
            CHECK_OK(serf_query_respond(n[1], e, (const uint8_t *)"me", 2));
            serf_event_free(e);
            break;
        }
        serf_event_free(e);
    }
    for (i = 0; i < 40; i++) {
        serf_status st = serf_query_next(q, 250, &u);
        if (st != SERF_OK) continue;
        if (u.kind == SERF_QUERY_DONE) break;
        if (u.kind == SERF_QUERY_RESPONSE) {
            responses++;
            CHECK(strcmp(u.from, "tri-1") == 0);
        }
    }
    CHECK(responses == 1);
    CHECK(serf_query_is_done(q));
    serf_query_free(q);

    /* Tags travel; RTT between two members is known after some probing. */
    CHECK_OK(serf_set_tag(n[1], "role", "cache"));
    {
        int seen = 0;
        end = now_ms() + 5000;
        while (!seen && now_ms() < end) {
            serf_members_t *list = NULL;
            size_t k;
            if (serf_members(n[0], &list) == SERF_OK) {
                for (k = 0; k < serf_members_count(list); k++) {
                    const serf_member_t *m = serf_members_get(list, k);
                    const char *role = serf_member_tag(m, "role");
                    if (strcmp(serf_member_name(m), "tri-1") == 0 && role && strcmp(role, "cache") == 0)
                        seen = 1;
                }
                serf_members_free(list);
            }
            if (!seen) sleep_ms(50);
        }
        CHECK(seen);
    }

    /* Node 2 leaves gracefully: the others see it left. */
    CHECK_OK(serf_leave(n[2]));
    {
        int left = 0;
        end = now_ms() + 5000;
        while (!left && now_ms() < end) {
            serf_members_t *list = NULL;
            size_t k;
            if (serf_members(n[0], &list) == SERF_OK) {
                for (k = 0; k < serf_members_count(list); k++) {
                    const serf_member_t *m = serf_members_get(list, k);
                    if (strcmp(serf_member_name(m), "tri-2") == 0 &&
                        serf_member_status(m) == SERF_MEMBER_LEFT)
                        left = 1;
                }
                serf_members_free(list);
            }
            if (!left) sleep_ms(50);
        }
        CHECK(left);
    }
    CHECK_OK(serf_force_leave(n[0], "tri-2", true));
out:
    for (i = 0; i < 3; i++) serf_free(n[i]);
    CHECK(read_count(&logc, 2) == 1); /* the log context was released with node 0 */
    CHECK(read_count(&cb, 2) == 1);
    pthread_mutex_destroy(&cb.lock);
    pthread_mutex_destroy(&logc.lock);
}

static void test_keys(void) {
    serf_config_t *cfg = loopback_config("keyed");
    serf_t *s = NULL;
    serf_key_result_t *r = NULL;
    const char *key = NULL, *node = NULL, *msg = NULL;
    size_t count = 0;
    char *json = NULL;
    char path[] = "/tmp/libserf-keyring-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char *text = "[\"XXo7nB4PKktsjZ4PGis8TQ==\"]";
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
    }
    CHECK_OK(serf_config_set_keyring_file(cfg, path));
    CHECK_OK(serf_create(cfg, &s));
    serf_config_free(cfg);
    if (!s) return;
    CHECK_OK(serf_stats_json(s, &json));
    CHECK(json && strstr(json, "\"encrypted\":true") != NULL);
    serf_string_free(json);
    CHECK_ST(serf_key_operation(s, 99, NULL, &r), SERF_ERR_INVALID);
    CHECK_ST(serf_key_operation(s, SERF_KEY_INSTALL, "bad!", &r), SERF_ERR_INVALID);
    CHECK_ST(serf_key_operation(s, SERF_KEY_INSTALL, NULL, &r), SERF_ERR_NULL);
    CHECK_ST(serf_key_operation(s, SERF_KEY_LIST, NULL, NULL), SERF_ERR_NULL);
    CHECK_OK(serf_key_operation(s, SERF_KEY_INSTALL, "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=", &r));
    CHECK(serf_key_result_num_nodes(r) == 1 && serf_key_result_num_responses(r) == 1);
    CHECK(serf_key_result_num_errors(r) == 0 && serf_key_result_error(r) == NULL);
    serf_key_result_free(r);
    CHECK_OK(serf_key_operation(s, SERF_KEY_USE, "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=", &r));
    CHECK(serf_key_result_num_errors(r) == 0);
    serf_key_result_free(r);
    CHECK_OK(serf_key_operation(s, SERF_KEY_LIST, NULL, &r));
    CHECK(serf_key_result_key_count(r) == 2);
    CHECK(serf_key_result_key_at(r, 0, &key, &count) && count == 1 && strlen(key) > 0);
    CHECK(!serf_key_result_key_at(r, 2, &key, &count));
    CHECK(serf_key_result_primary_key_count(r) == 1);
    CHECK(serf_key_result_primary_key_at(r, 0, &key, &count) &&
          strcmp(key, "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=") == 0);
    serf_key_result_free(r);
    /* Removing the primary key fails on the node: a per-node message. */
    CHECK_OK(serf_key_operation(s, SERF_KEY_REMOVE, "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=", &r));
    CHECK(serf_key_result_num_errors(r) == 1 && serf_key_result_error(r) != NULL);
    CHECK(serf_key_result_message_count(r) == 1);
    CHECK(serf_key_result_message_at(r, 0, &node, &msg) && strcmp(node, "keyed") == 0);
    CHECK(!serf_key_result_message_at(r, 1, &node, &msg));
    serf_key_result_free(r);
    CHECK_OK(serf_key_operation(s, SERF_KEY_REMOVE, "XXo7nB4PKktsjZ4PGis8TQ==", &r));
    CHECK(serf_key_result_num_errors(r) == 0);
    serf_key_result_free(r);
    serf_free(s);
    {
        /* The keyring file now holds only the new key. */
        char buf[256] = {0};
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            (void)n;
            fclose(f);
        }
        CHECK(strstr(buf, "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=") != NULL);
        CHECK(strstr(buf, "XXo7nB4PKktsjZ4PGis8TQ==") == NULL);
    }
    unlink(path);
}

static void test_queue_overflow(void) {
    serf_config_t *cfg = loopback_config("overflow");
    serf_t *s = NULL;
    int i;
    CHECK_OK(serf_config_set_event_queue_capacity(cfg, 2));
    CHECK_OK(serf_create(cfg, &s));
    serf_config_free(cfg);
    if (!s) return;
    for (i = 0; i < 10; i++) CHECK_OK(serf_send_event(s, "flood", NULL, 0, false));
    {
        long long end = now_ms() + 3000;
        while (serf_dropped_events(s) == 0 && now_ms() < end) sleep_ms(10);
    }
    CHECK(serf_dropped_events(s) > 0);
    drain(s);
    serf_free(s);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct {
    serf_t *s;
    int which;
    int failures;
} worker_t;

static void *hammer(void *arg) {
    worker_t *w = (worker_t *)arg;
    long long end = now_ms() + 2000;
    int i;
    for (i = 0; i < 400 && now_ms() < end; i++) {
        serf_event_t *e = NULL;
        serf_members_t *list = NULL;
        serf_status st;
        switch ((w->which + i) % 4) {
        case 0:
            if (serf_members(w->s, &list) != SERF_OK || serf_members_count(list) < 1) w->failures++;
            serf_members_free(list);
            break;
        case 1:
            st = serf_send_event(w->s, "hammer", (const uint8_t *)"x", 1, false);
            if (st != SERF_OK) w->failures++;
            break;
        case 2:
            st = serf_poll_event(w->s, 1, &e);
            if (st != SERF_OK && st != SERF_ERR_TIMEOUT) w->failures++;
            serf_event_free(e);
            break;
        default:
            st = serf_try_event(w->s, &e);
            if (st != SERF_OK && st != SERF_ERR_TIMEOUT) w->failures++;
            serf_event_free(e);
            if (serf_set_tag(w->s, "worker", "busy") != SERF_OK) w->failures++;
            break;
        }
    }
    return NULL;
}

static void test_four_threads(void) {
    serf_t *s = start("hammered");
    pthread_t t[4];
    worker_t w[4];
    int i;
    CHECK(s != NULL);
    if (!s) return;
    for (i = 0; i < 4; i++) {
        w[i].s = s;
        w[i].which = i;
        w[i].failures = 0;
        CHECK(pthread_create(&t[i], NULL, hammer, &w[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].failures == 0);
    }
    drain(s);
    serf_free(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* A C node with two reference HashiCorp agents. */

static unsigned short free_port(void) {
    int tries;
    for (tries = 0; tries < 50; tries++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        int u = socket(AF_INET, SOCK_DGRAM, 0), t;
        unsigned short port;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(u, (struct sockaddr *)&a, &len) != 0) {
            if (u >= 0) close(u);
            continue;
        }
        port = ntohs(a.sin_port);
        t = socket(AF_INET, SOCK_STREAM, 0);
        if (t >= 0 && bind(t, (struct sockaddr *)&a, sizeof a) == 0) {
            close(t);
            close(u);
            return port;
        }
        if (t >= 0) close(t);
        close(u);
    }
    return 0;
}

typedef struct {
    pid_t pid;
    unsigned short gossip, rpc;
    char name[32];
    char events_file[64];
} agent_t;

/* Runs the reference CLI against an agent; returns its exit status (-1 if it could not run). */
static int cli(const agent_t *a, const char *cmd, const char *arg1, const char *arg2) {
    char rpc[64];
    pid_t pid;
    int status = 0;
    snprintf(rpc, sizeof rpc, "-rpc-addr=127.0.0.1:%u", a->rpc);
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl(g_reference, g_reference, cmd, rpc, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int agent_start(agent_t *a, const char *name) {
    char node[64], bind_[64], rpc[64], handler[160], log[96];
    long long end;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->gossip = free_port();
    a->rpc = free_port();
    snprintf(a->events_file, sizeof a->events_file, "/tmp/libserf-c-%s-%d.events", name, (int)getpid());
    unlink(a->events_file);
    snprintf(node, sizeof node, "-node=%s", name);
    snprintf(bind_, sizeof bind_, "-bind=127.0.0.1:%u", a->gossip);
    snprintf(rpc, sizeof rpc, "-rpc-addr=127.0.0.1:%u", a->rpc);
    snprintf(handler, sizeof handler, "-event-handler=user:from-c=cat >> %s", a->events_file);
    snprintf(log, sizeof log, "/tmp/libserf-c-%s-%d.log", name, (int)getpid());
    a->pid = fork();
    if (a->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(g_reference, g_reference, "agent", node, bind_, rpc, handler, (char *)NULL);
        _exit(127);
    }
    if (a->pid < 0) return 0;
    end = now_ms() + 10000;
    while (now_ms() < end) {
        if (cli(a, "members", NULL, NULL) == 0) return 1;
        sleep_ms(100);
    }
    return 0;
}

static void agent_stop(agent_t *a) {
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
        a->pid = 0;
    }
    unlink(a->events_file);
}

static int file_contains(const char *path, const char *needle) {
    char buf[1024] = {0};
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f) return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static void test_reference_agents(void) {
    agent_t a[2];
    serf_t *s = NULL;
    serf_config_t *cfg;
    serf_event_t *e = NULL;
    int i, ok = 1;
    memset(a, 0, sizeof a);
    if (g_reference == NULL || access(g_reference, X_OK) != 0) {
        fprintf(stderr, "  the reference agent is missing (pass its path as the argument)\n");
        CHECK(!"reference agent available");
        return;
    }
    ok = agent_start(&a[0], "ref-a") && agent_start(&a[1], "ref-b");
    CHECK(ok);
    if (!ok) goto out;
    {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", a[0].gossip);
        CHECK(cli(&a[1], "join", addr, NULL) == 0);
    }
    cfg = loopback_config("c-node");
    CHECK_OK(serf_config_set_profile(cfg, SERF_PROFILE_LAN));
    CHECK_OK(serf_config_set_protocol_version(cfg, 5));
    CHECK_OK(serf_create(cfg, &s));
    serf_config_free(cfg);
    if (!s) goto out;
    {
        char a0[64], a1[64];
        const char *addrs[2];
        size_t contacted = 0;
        snprintf(a0, sizeof a0, "127.0.0.1:%u", a[0].gossip);
        snprintf(a1, sizeof a1, "127.0.0.1:%u", a[1].gossip);
        addrs[0] = a0;
        addrs[1] = a1;
        CHECK_OK(serf_join(s, addrs, 2, false, &contacted));
        CHECK(contacted == 2);
    }
    CHECK(wait_alive(s, 3, 10000));
    /* C -> Go: both agents run their handler with our payload. */
    CHECK_OK(serf_send_event(s, "from-c", (const uint8_t *)"c-payload", 9, false));
    for (i = 0; i < 2; i++) {
        long long end = now_ms() + 10000;
        while (!file_contains(a[i].events_file, "c-payload") && now_ms() < end) sleep_ms(100);
        CHECK(file_contains(a[i].events_file, "c-payload"));
    }
    /* Go -> C. */
    CHECK(cli(&a[1], "event", "from-go", "go-payload") == 0);
    e = wait_user_event(s, "from-go", 10000);
    CHECK(e != NULL);
    if (e) {
        size_t len = 0;
        const uint8_t *p = serf_event_payload(e, &len);
        CHECK(len == 10 && memcmp(p, "go-payload", 10) == 0);
        serf_event_free(e);
    }
    CHECK_OK(serf_leave(s));
out:
    serf_free(s);
    agent_stop(&a[0]);
    agent_stop(&a[1]);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    g_reference = argc > 1 ? argv[1] : NULL;
    run("version_and_status", test_version_and_status);
    run("config_setters", test_config_setters);
    run("null_everywhere", test_null_everywhere);
    run("create_errors", test_create_errors);
    run("single_node", test_single_node);
    run("query_single_node", test_query_single_node);
    run("after_leave_and_shutdown", test_after_leave_and_shutdown);
    run("free_order", test_free_order);
    run("three_nodes", test_three_nodes);
    run("keys", test_keys);
    run("queue_overflow", test_queue_overflow);
    run("four_threads", test_four_threads);
    run("reference_agents", test_reference_agents);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
