/* api_node.c - a node inside the application's process (include/stemma.h): stepped by
 * the application's loop through a descriptor, or run on a thread of its own.
 *
 * Invariants:
 *  1. One thread touches the node_t at a time: the caller's while it steps, the
 *     node's own between stemma_node_start and the end of stemma_node_stop. While the
 *     thread runs, the caller reaches the node only through the control socket
 *     (requests) and the atomic flags below (stop, reload), each followed by a byte on
 *     the wake pipe so that the thread's poll returns at once.
 *  2. Log lines and events go to the application's callbacks on whichever thread
 *     runs the node: its log sink (base/log.h) is set for exactly the time it runs. */
#include "api_internal.h"
#include "base/log.h"
#include "base/mem.h"
#include "node/control.h"
#include "node/keys.h"
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct stemma_node {
    node_t *node;                /* owned */
    stemma_node_options opts;    /* the caller's callbacks */
    char key[KEYS_Z85_LEN + 1];  /* the node's public key, Z85 */
    char *control;               /* the control endpoint, owned */
    int wake[2];                 /* a pipe: a byte written wakes the node's thread */
    pthread_t thread;            /* the node's own thread, while running */
    bool running;                /* the thread runs (or has not been joined yet) */
    atomic_bool stop;            /* the thread is asked to stop */
    atomic_bool reload;          /* the thread is asked to reload */
    stm_error thread_err;        /* why the thread stopped on its own, if it did */
};

/* ---- callbacks: the node's log and events, handed to the application ---- */

static void s_on_log(void *ctx, log_level level, const char *event, const char *peer,
                     const char *message)
{
    stemma_node *h = ctx;
    h->opts.on_log(h->opts.user, (stemma_log_level)level, event, peer, message);
}

static void s_on_event(void *ctx, const node_event *nev)
{
    stemma_node *h = ctx;
    char key[KEYS_Z85_LEN + 1] = "";
    if (nev->peer)
        stm_keys_to_z85(nev->peer, key);
    stemma_event ev = {
        .kind = nev->kind == NODE_EVENT_PEER_JUDGED ? STEMMA_EVENT_PEER_JUDGED
                : nev->kind == NODE_EVENT_APPLIED   ? STEMMA_EVENT_APPLIED
                                                    : STEMMA_EVENT_MIGRATED,
        .peer_key = nev->peer ? key : NULL,
        .peer_name = nev->peer_name,
        .peer_endpoint = nev->endpoint,
        .relation = (stemma_relation)nev->relation,
        .peer_version = nev->peer_version,
        .sync = (stemma_sync)nev->sync,
        .reason = nev->reason,
        .applied = nev->stats.applied,
        .present = nev->stats.present,
        .parked = nev->stats.parked,
        .replayed = nev->stats.replayed,
        .parked_total = nev->parked_total,
        .conflicts_total = nev->conflicts_total,
        .version = nev->version,
    };
    h->opts.on_event(h->opts.user, &ev);
}

/* Sets this thread's log sink to the node's (invariant 2); returns the one replaced. */
static log_sink s_sink_in(stemma_node *h)
{
    log_sink sink = {.fn = h->opts.on_log ? s_on_log : NULL,
                     .ctx = h,
                     .min = (log_level)h->opts.log_level};
    return stm_log_set_sink(sink);
}

/* ---- life ---- */

STEMMA_API stemma_code stemma_node_open(const char *dir, const stemma_node_options *opts,
                                        stemma_node **out, stemma_error *err)
{
    static const stemma_node_options defaults = STEMMA_NODE_OPTIONS_INIT;
    if (!dir || !out)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_open: dir and out are required");
    *out = NULL;
    if (opts && ((int)opts->log_level < STEMMA_LOG_INFO || opts->log_level > STEMMA_LOG_ERROR))
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_node_open: log_level must be STEMMA_LOG_INFO, _WARN or "
                            "_ERROR");
    stemma_node *h = stm_calloc(1, sizeof *h);
    h->opts = opts ? *opts : defaults;
    h->wake[0] = h->wake[1] = -1;
    atomic_init(&h->stop, false);
    atomic_init(&h->reload, false);
    if (pipe(h->wake) != 0) {
        stemma_code code = stm_api_fail(err, STEMMA_ESYS, "stemma_node_open: a pipe: %s",
                                        strerror(errno));
        free(h);
        return code;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(h->wake[i], F_SETFD, FD_CLOEXEC);
        fcntl(h->wake[i], F_SETFL, O_NONBLOCK);
    }
    /* What opening logs (a new origin, drift) reaches the application too. */
    stm_error e = {0};
    log_sink was = s_sink_in(h);
    stm_err rc = stm_node_open(dir, &h->node, &e);
    stm_log_set_sink(was);
    if (rc != STM_OK) {
        stemma_node_close(&h);
        return stm_api_error(err, &e);
    }
    if (h->opts.on_event)
        stm_node_set_events(h->node, s_on_event, h);
    snprintf(h->key, sizeof h->key, "%s", stm_node_key_z85(h->node));
    h->control = stm_strdup(stm_node_control_endpoint(h->node));
    *out = h;
    return STEMMA_OK;
}

STEMMA_API void stemma_node_close(stemma_node **node)
{
    if (!node || !*node)
        return;
    stemma_node *h = *node;
    if (h->running)
        (void)stemma_node_stop(h, NULL);
    if (h->node) {
        log_sink was = s_sink_in(h);
        stm_node_say_bye(h->node);
        stm_node_destroy(&h->node);
        stm_log_set_sink(was);
    }
    for (int i = 0; i < 2; i++)
        if (h->wake[i] >= 0)
            close(h->wake[i]);
    free(h->control);
    free(h);
    *node = NULL;
}

STEMMA_API const char *stemma_node_endpoint(const stemma_node *node)
{
    return stm_node_endpoint(node->node);
}

STEMMA_API const char *stemma_node_key(const stemma_node *node)
{
    return node->key;
}

/* ---- the application's loop ---- */

STEMMA_API stemma_code stemma_node_fd(stemma_node *node, int *fd, stemma_error *err)
{
    if (!node || !fd)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_fd: node and fd are required");
    if (node->running)
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_node_fd: the node runs on its own thread "
                            "(stemma_node_start); stop it first to step it");
    stm_error e = {0};
    return stm_node_fd(node->node, fd, &e) == STM_OK ? STEMMA_OK : stm_api_error(err, &e);
}

/* One step on the calling thread, its log going to the application (invariant 2). */
static stm_err s_step(stemma_node *h, long *next_ms, stm_error *e)
{
    log_sink was = s_sink_in(h);
    stm_err rc = stm_node_step(h->node, next_ms, e);
    stm_log_set_sink(was);
    return rc;
}

STEMMA_API stemma_code stemma_node_step(stemma_node *node, int *timeout_ms, stemma_error *err)
{
    if (!node || !timeout_ms)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_step: node and timeout_ms are "
                                                "required");
    if (node->running)
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_node_step: the node runs on its own thread "
                            "(stemma_node_start); stop it first to step it");
    stm_error e = {0};
    long next = 0;
    if (s_step(node, &next, &e) != STM_OK)
        return stm_api_error(err, &e);
    *timeout_ms = next > INT_MAX ? INT_MAX : (int)next;
    return STEMMA_OK;
}

/* ---- a thread of its own ---- */

static void *s_thread(void *arg)
{
    stemma_node *h = arg;
    int fd = -1;
    long next = 0;
    stm_err rc = stm_node_fd(h->node, &fd, &h->thread_err);
    while (rc == STM_OK && !atomic_load(&h->stop)) {
        if (atomic_exchange(&h->reload, false)) {
            log_sink was = s_sink_in(h);
            stm_node_reload(h->node);
            stm_log_set_sink(was);
        }
        struct pollfd items[2] = {{.fd = fd, .events = POLLIN}, {.fd = h->wake[0], .events = POLLIN}};
        int timeout = next > INT_MAX ? INT_MAX : (int)next;
        if (poll(items, 2, timeout) < 0 && errno != EINTR) {
            rc = stm_error_set(&h->thread_err, STM_ESYS, "the node's thread: poll: %s",
                               strerror(errno));
            break;
        }
        if (items[1].revents & POLLIN) {
            char drain[64];
            while (read(h->wake[0], drain, sizeof drain) > 0)
                ;
        }
        rc = s_step(h, &next, &h->thread_err);
    }
    log_sink was = s_sink_in(h);
    if (rc != STM_OK)
        stm_log_event(STM_LOG_ERROR, "node", NULL, "the node's thread stops: %s",
                      h->thread_err.msg);
    stm_node_say_bye(h->node);
    stm_log_set_sink(was);
    return NULL;
}

static void s_wake(stemma_node *h)
{
    ssize_t n = write(h->wake[1], "w", 1);
    (void)n; /* full: a wake is pending already */
}

STEMMA_API stemma_code stemma_node_start(stemma_node *node, stemma_error *err)
{
    if (!node)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_start: node is required");
    if (node->running)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_start: the node runs already");
    atomic_store(&node->stop, false);
    stm_error_clear(&node->thread_err);
    int rc = pthread_create(&node->thread, NULL, s_thread, node);
    if (rc != 0)
        return stm_api_fail(err, STEMMA_ESYS, "stemma_node_start: a thread: %s", strerror(rc));
    node->running = true;
    return STEMMA_OK;
}

STEMMA_API stemma_code stemma_node_stop(stemma_node *node, stemma_error *err)
{
    if (!node)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_stop: node is required");
    if (!node->running)
        return STEMMA_OK;
    atomic_store(&node->stop, true);
    s_wake(node);
    pthread_join(node->thread, NULL);
    node->running = false;
    if (node->thread_err.code != STM_OK)
        return stm_api_error(err, &node->thread_err);
    return STEMMA_OK;
}

/* ---- asking it ---- */

STEMMA_API stemma_code stemma_node_request(stemma_node *node, const char *request, char **reply,
                                           stemma_error *err)
{
    if (!node || !request || !reply)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_request: node, request and reply "
                                                "are required");
    *reply = NULL;
    if (strlen(request) > CONTROL_MAX_REQUEST)
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_node_request: a request is %d bytes at most",
                            CONTROL_MAX_REQUEST);
    if (!node->running) {
        log_sink was = s_sink_in(node);
        *reply = stm_node_ask(node->node, request);
        stm_log_set_sink(was);
        return STEMMA_OK;
    }
    /* Its own thread answers on the control socket (invariant 1). */
    stm_error e = {0};
    size_t len = 0;
    if (stm_control_ask(node->control, "the embedded node", request, reply, &len, &e) != STM_OK)
        return stm_api_error(err, &e);
    return STEMMA_OK;
}

STEMMA_API stemma_code stemma_node_reload(stemma_node *node, stemma_error *err)
{
    if (!node)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_node_reload: node is required");
    if (node->running) {
        atomic_store(&node->reload, true);
        s_wake(node);
        return STEMMA_OK;
    }
    log_sink was = s_sink_in(node);
    stm_node_reload(node->node);
    stm_log_set_sink(was);
    return STEMMA_OK;
}
