/* node.c - the daemon: its loop (the sockets it waits on, read in turn) and its timers
 * (node.h); what each message does is dispatch.c's (and meet.c's), how the node is made
 * and destroyed life.c's.
 *
 * The node owns the database, the sockets and the peers, and runs one loop in one
 * thread. The work is done by the modules it owns: its database (local.h), the inbox
 * (inbox.h), the peers (mesh.h, peer.h) and their sync sessions (sync/session.h), the
 * batches received (sync/inbound.h), the trusted keys and the ZAP handler (zap.h),
 * the control socket (control.h), LAN discovery's beacons (beacon.h). What is left
 * here is who is told what, and when.
 *
 * Invariants:
 *
 *  1. One timer source. Every deadline is in s_node_timers or s_peer_timers as a
 *     pair: when it is due (INT64_MAX: not armed) and what runs then. The loop sleeps
 *     until the earliest `due` of those tables, and the timer pass runs each whose
 *     `due` has come, by the same functions, so the two cannot disagree (Redis's
 *     ae.c computes its sleep from the list it runs, too); nothing caps the sleep.
 *  2. Dispatch only records: keys trusted on first use are written to known_peers,
 *     and what peers lack is read and sent, in the before-sleep step
 *     (s_before_sleep). Peers are never freed while the node runs.
 *  3. Batches received are stored by the inbound timer, due at once after the pass
 *     that received them (one transaction for all of them; earlier only when the
 *     queue is full), and acknowledged only after the commit. */
#include "node.h"
#include "node_internal.h"
#include "beacon.h"
#include "control.h"
#include "inbox.h"
#include "local.h"
#include "mesh.h"
#include "peer.h"
#include "wire.h"
#include "zap.h"
#include "zsock.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/clock.h"
#include "sync/apply.h"
#include "sync/inbound.h"
#include "sync/session.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>


static void s_handle_beacons(node_t *n)
{
    /* At most this many a pass, as for the inbox; the kernel drops what overflows. */
    beacon_heard h;
    stm_error err = {0};
    for (int budget = 0; budget < 256; budget++) {
        beacon_read r = stm_beacon_next(n->beacon, &h, &err);
        if (r == BEACON_NONE)
            return;
        if (r == BEACON_HEARD) {
            stm_node_on_beacon(n, &h);
        } else {
            stm_node_drop(n, REPORT_DROP_BEACON);
            stm_log_event(STM_LOG_WARN, "malformed", NULL, "discovery: %s", err.msg);
        }
    }
}

static void s_handle_inbox(node_t *n)
{
    /* At most this many a pass: the timers and the other sockets get their turn. */
    inbox_msg m;
    for (int budget = 0; budget < 256 && stm_inbox_next(n->inbox, &m); budget++)
        stm_node_dispatch(n, NULL, &m);
}

/* What p sent on the DEALER this node opened to it: a peer answers there when it has no
 * connection of its own to this node. Its sender is the key the DEALER dialled (CURVE
 * proved it); insecure, the peer as we know it. */
static void s_handle_dealer(node_t *n, peer_t *p)
{
    const void *data;
    size_t len;
    for (int budget = 0; budget < 256 && stm_peer_next(p, &data, &len); budget++) {
        inbox_msg m = {.data = data, .len = len, .address = ""};
        if (stm_peer_id(p)) {
            m.has_sender = true;
            m.verified = !n->insecure;
            m.sender = *stm_peer_id(p);
        }
        stm_node_dispatch(n, p, &m);
    }
}

/* (node_internal.h) The sockets the loop waits on: the inbox, the control socket, the
 * ZAP handler's (when secure), LAN discovery's UDP socket (a plain fd; when discovery
 * is on), then every open DEALER, whose peer is n->poll_peers[i - POLL_FIXED]. */
#define POLL_FIXED 4
size_t stm_node_poll_items(node_t *n)
{
    size_t need = POLL_FIXED + stm_mesh_count(n->mesh);
    if (need > n->poll_cap) {
        n->poll_items = stm_grow(n->poll_items, &n->poll_cap, need, sizeof *n->poll_items);
        n->poll_peers = stm_realloc(n->poll_peers, n->poll_cap * sizeof *n->poll_peers);
    }
    void *zap = stm_zap_socket(n->zap);
    n->poll_items[0] = (zmq_pollitem_t){stm_inbox_socket(n->inbox), 0, ZMQ_POLLIN, 0};
    n->poll_items[1] = (zmq_pollitem_t){stm_control_socket(n->control), 0, ZMQ_POLLIN, 0};
    /* Without a ZAP socket (insecure), an entry that never wakes keeps the numbering:
     * no socket and fd -1, which poll(2) skips. */
    n->poll_items[2] = (zmq_pollitem_t){zap, zap ? 0 : -1, zap ? ZMQ_POLLIN : 0, 0};
    int udp = n->beacon ? stm_beacon_fd(n->beacon) : -1;
    n->poll_items[3] = (zmq_pollitem_t){NULL, udp, udp >= 0 ? ZMQ_POLLIN : 0, 0};
    size_t count = POLL_FIXED;
    for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
        peer_t *p = stm_mesh_at(n->mesh, i);
        if (!stm_peer_socket(p))
            continue;
        n->poll_peers[count - POLL_FIXED] = p;
        n->poll_items[count++] = (zmq_pollitem_t){stm_peer_socket(p), 0, ZMQ_POLLIN, 0};
    }
    return count;
}

/* ---- timers ---- */

/* Local writes and migrations, looked for every local_poll_ms. */
static int64_t s_local_due(const node_t *n)
{
    return n->next_local_poll_ms;
}

static void s_local_run(node_t *n, int64_t now)
{
    int found = stm_local_look(n->local);
    /* A bulk write's next slice as soon as it is due (sync/apply.h: the lock let go
     * between slices). */
    n->next_local_poll_ms = stm_local_collecting(n->local) ? stm_local_next_slice_ms(n->local)
                                                           : now + n->local_poll_ms;
    if (found & LOCAL_MIGRATED) {
        stm_log_event(STM_LOG_INFO, "migrated", NULL, "the database is now at v%d: telling peers",
                      stm_local_version(n->local));
        stm_node_tell_migrated(n, stm_local_version(n->local));
        /* What the policy parked is judged again against the new version. */
        n->policy_retry = true;
        /* Peers judge us again, and we them (stm_peer_rejudge: a gone or refused peer stays
         * so until its answer to this HELLO is judged). */
        for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
            peer_t *p = stm_mesh_at(n->mesh, i);
            stm_peer_rejudge(p, stm_local_lineage(n->local), &n->policy);
            stm_peer_follow(p, stm_local_lenses(n->local), stm_local_set_lineage(n->local),
                            stm_local_admit(n->local), &n->policy);
            if (stm_peer_active(p))
                stm_node_send_hello(n, p, false);
        }
    }
    if (found)
        stm_mesh_mark_more(n->mesh);
}

/* Whether this node would let a key in: the peers it may choose (mesh.h). */
static bool s_trusted(void *ctx, const stm_id *id)
{
    node_t *n = ctx;
    return n->insecure || stm_zap_tofu(n->zap) || stm_zap_is_trusted(n->zap, id);
}

/* Which learned peers are kept: when a trial ends or a peer let go may be chosen again;
 * the loop also chooses before every sleep (s_before_sleep). */
static int64_t s_mesh_due(const node_t *n)
{
    return stm_mesh_choose_at(n->mesh);
}

static void s_mesh_run(node_t *n, int64_t now)
{
    stm_mesh_choose(n->mesh, now, s_trusted, n);
}

/* Storing what peers sent: at once after the pass that received it, or after a
 * backoff when the last attempt failed. */
static int64_t s_inbound_due(const node_t *n)
{
    int64_t due = stm_inbound_due_at(n->inbound);
    /* While a bulk write is collected, what came in waits for it (dispatch.c). */
    if (due != INT64_MAX && stm_local_collecting(n->local) &&
        stm_local_next_slice_ms(n->local) > due)
        due = stm_local_next_slice_ms(n->local);
    return due;
}

static void s_inbound_run(node_t *n, int64_t now)
{
    (void)now;
    stm_node_store_inbound(n);
}

/* A connected peer fell silent; its batches in flight went unacknowledged. Not while
 * the node itself was busy past the deadline (storing or sending a large row change):
 * what the peer sent meanwhile is read first, at once, and the deadline looked at again. */
static void s_silence_run(node_t *n, peer_t *p, int64_t now)
{
    if (n->listened_ms < stm_peer_silent_at(p))
        return;
    stm_peer_on_silence(p, now);
}

static void s_resend_run(node_t *n, peer_t *p, int64_t now)
{
    (void)now;
    if (n->listened_ms < stm_peer_resend_at(p))
        return; /* as above: its ACK or RECEIVED may be waiting */
    stm_peer_resend(p);
}

/* HELLO again, with backoff, to a peer that has not answered or has refused us; on a
 * new DEALER when the old one has heard nothing for a while (its key may have been
 * refused, and libzmq does not dial again after that). */
static void s_hello_run(node_t *n, peer_t *p, int64_t now)
{
    stm_error err = {0};
    if (stm_peer_redial_due(p, now) && stm_peer_redial(p))
        stm_log_event(STM_LOG_INFO, "peer-redial", stm_peer_short_id(p),
                      "%s: no answer; dialling again on a new socket every %d ms until it "
                      "answers (if it refused this node's key, run 'stemma trust add %s' "
                      "on it)",
                      stm_peer_endpoint(p), n->reconnect_max_ms, n->key_z85);
    if (stm_node_open_peer(n, p, &err) == STM_OK)
        stm_node_send_hello(n, p, false);
    else
        stm_log_event(STM_LOG_WARN, "peer", stm_peer_short_id(p), "%s", err.msg);
    stm_peer_hello_sent(p, now, true);
}

/* A PING to a connected peer that was sent nothing for heartbeat_ms (peer.h). */
static void s_ping_run(node_t *n, peer_t *p, int64_t now)
{
    (void)n;
    stm_peer_ping(p, now);
}

/* A pruned peer held what we lack and we have not moved on since: it may be due a
 * GRAFT (peer.h, "lazy links"). */
static void s_graft_run(node_t *n, peer_t *p, int64_t now)
{
    (void)now;
    stm_node_check_graft(n, p);
}

/* Operations parked because their clock was ahead of this machine's apply once its
 * clock catches up, even while nothing arrives (sync/apply.h, invariant 7). The
 * applier says when in wall-clock time; the deadline is on the monotonic clock. */
static int64_t s_ahead_due(const node_t *n)
{
    int64_t wall = stm_applier_ahead_due(stm_local_applier(n->local));
    if (wall == INT64_MAX)
        return INT64_MAX;
    int64_t now = stm_monotime_ms(), wait = wall == INT64_MIN ? 0 : wall - stm_wall_ms();
    int64_t at = now + (wait > 0 ? wait : 0);
    return at > n->ahead_retry_after ? at : n->ahead_retry_after;
}

static void s_ahead_run(node_t *n, int64_t now)
{
    apply_stats st = {0};
    stm_error err = {0};
    if (stm_applier_retry_ahead(stm_local_applier(n->local), &st, &err) != STM_OK) {
        /* Busy or read-only: tried again a second later, as received batches are. */
        n->ahead_retry_after = now + 1000;
        if (!n->ahead_failing)
            stm_log_event(STM_LOG_WARN, "apply", NULL,
                          "operations parked for their clock: %s (tried again)", err.msg);
        n->ahead_failing = true;
        return;
    }
    n->ahead_retry_after = 0;
    n->ahead_failing = false;
    if (st.replayed)
        stm_node_tell_applied(n, &st);
    if (st.replayed)
        stm_log_event(STM_LOG_INFO, "apply", NULL,
                      "%llu operations parked for their clock applied: this machine's clock "
                      "has caught up",
                      (unsigned long long)st.replayed);
}

/* Operations the policy parked (sync/apply.h, invariant 10; admit.h), judged again
 * once something they were judged by changed: at the start (the policy may be new), when
 * a HELLO describes a version not known before, after a migration. */
static int64_t s_policy_due(const node_t *n)
{
    return n->policy_retry ? n->policy_retry_after : INT64_MAX;
}

static void s_policy_run(node_t *n, int64_t now)
{
    apply_stats st = {0};
    stm_error err = {0};
    if (stm_applier_retry_policy(stm_local_applier(n->local), &st, &err) != STM_OK) {
        n->policy_retry_after = now + 1000; /* busy or read-only: as for clocks ahead */
        if (!n->policy_failing)
            stm_log_event(STM_LOG_WARN, "apply", NULL,
                          "operations parked by the policy: %s (tried again)", err.msg);
        n->policy_failing = true;
        return;
    }
    n->policy_retry = false;
    n->policy_retry_after = 0;
    n->policy_failing = false;
    if (st.replayed)
        stm_node_tell_applied(n, &st);
    if (st.replayed) {
        stm_log_event(STM_LOG_INFO, "apply", NULL,
                      "%llu operations parked by the policy applied: the policy, a version "
                      "learned or a migration admits them now",
                      (unsigned long long)st.replayed);
    }
}

/* This node's beacon, every interval_ms while discovery is on and the network can
 * dial it. */
static int64_t s_beacon_due(const node_t *n)
{
    return n->beacon ? stm_beacon_send_at(n->beacon) : INT64_MAX;
}

static void s_beacon_run(node_t *n, int64_t now)
{
    stm_beacon_send(n->beacon, now);
}

/* Compaction (compactor.h): a pass every interval, a slice a turn of the loop. */
static int64_t s_compact_due(const node_t *n)
{
    return stm_compactor_due(n->compactor);
}

static void s_compact_run(node_t *n, int64_t now)
{
    stm_compactor_run(n->compactor, n->local, n->mesh, now);
}

/* The deadlines: when each is due (INT64_MAX: not armed), and what runs then. */
static const struct {
    int64_t (*due)(const node_t *n);
    void (*run)(node_t *n, int64_t now);
} s_node_timers[] = {
    {s_local_due, s_local_run},
    {s_mesh_due, s_mesh_run},
    {s_inbound_due, s_inbound_run},
    {s_ahead_due, s_ahead_run},
    {s_policy_due, s_policy_run},
    {s_beacon_due, s_beacon_run},
    {s_compact_due, s_compact_run},
};
/* Each peer's, in this order: a peer found silent is said HELLO in the same pass. */
static const struct {
    int64_t (*due)(const peer_t *p);
    void (*run)(node_t *n, peer_t *p, int64_t now);
} s_peer_timers[] = {
    {stm_peer_silent_at, s_silence_run},
    {stm_peer_resend_at, s_resend_run},
    {stm_peer_hello_at, s_hello_run},
    {stm_peer_ping_at, s_ping_run},
    {stm_peer_graft_at, s_graft_run},
};
#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The earliest deadline of all: what the loop sleeps until. */
static int64_t s_next_due(const node_t *n)
{
    int64_t next = INT64_MAX;
    for (size_t t = 0; t < S_COUNT(s_node_timers); t++) {
        int64_t due = s_node_timers[t].due(n);
        next = due < next ? due : next;
    }
    for (size_t i = 0; i < stm_mesh_count(n->mesh); i++)
        for (size_t t = 0; t < S_COUNT(s_peer_timers); t++) {
            int64_t due = s_peer_timers[t].due(stm_mesh_at(n->mesh, i));
            next = due < next ? due : next;
        }
    return next;
}

/* Runs every timer whose deadline has come, by the same test. */
static void s_run_timers(node_t *n, int64_t now)
{
    for (size_t t = 0; t < S_COUNT(s_node_timers); t++)
        if (now >= s_node_timers[t].due(n))
            s_node_timers[t].run(n, now);
    for (size_t i = 0; i < stm_mesh_count(n->mesh); i++) {
        peer_t *p = stm_mesh_at(n->mesh, i);
        for (size_t t = 0; t < S_COUNT(s_peer_timers); t++)
            if (now >= s_peer_timers[t].due(p))
                s_peer_timers[t].run(n, p, now);
    }
}

/* Records beside the database that its own operations may leave it (sync/origin.h),
 * before any of them is sent. False when it cannot be written: nothing is sent then. */
static bool s_mark(node_t *n)
{
    stm_id origin;
    stm_error err = {0};
    if (stm_local_mark_sent(n->local, &origin, &err) != STM_OK) {
        if (!n->mark_failing) /* said once until it can be written again */
            stm_log_event(STM_LOG_ERROR, "sent-mark", NULL,
                          "%s: nothing is sent until it can be written", err.msg);
        n->mark_failing = true;
        return false;
    }
    if (n->mark_failing)
        stm_log_event(STM_LOG_INFO, "sent-mark", NULL, "written again: sending resumes");
    n->mark_failing = false;
    static const stm_id none = {{0}};
    bool renewed = !stm_id_equal(&n->origin, &none) && !stm_id_equal(&n->origin, &origin);
    n->origin = origin;
    /* A new origin (the database was restored, by stemma restore or in place, or found
     * to be a copy): its peers think it holds what it held before. A HELLO gives them
     * its vector, read from the database first (it may have fallen), and they send
     * again from there. */
    if (renewed)
        stm_local_sync_feed(n->local);
    for (size_t i = 0; renewed && i < stm_mesh_count(n->mesh); i++) {
        peer_t *p = stm_mesh_at(n->mesh, i);
        if (stm_peer_get_state(p) == PEER_CONNECTED)
            stm_node_send_hello(n, p, false);
    }
    return true;
}

/* After the timers, before sleeping: what waited for dispatch to end. */
static void s_before_sleep(node_t *n)
{
    stm_zap_flush(n->zap); /* known_peers, written and fsynced out of dispatch */
    /* Peers gone or refused in this pass are let go, others chosen: their HELLOs are due
     * at once, which the sleep computed after this sees. */
    stm_mesh_choose(n->mesh, stm_monotime_ms(), s_trusted, n);
    if (!s_mark(n))
        return;
    /* What each lacks, within its window. A long walk stops after a slice (many runs
     * it lacks nothing of: a peer met again) and goes on in the next pass, which then
     * does not sleep. */
    n->walking = false;
    for (size_t i = 0; i < stm_mesh_count(n->mesh); i++)
        if (stm_peer_pump(stm_mesh_at(n->mesh, i), stm_local_feed(n->local), stm_monotime_ms()))
            n->walking = true;
    stm_node_tell_vectors(n);
    /* What other programs recorded (stemma apply beside the node), after the sends: with
     * many origins the comparison takes milliseconds. Found, it is sent next pass. */
    if (stm_local_sync_due(n->local)) {
        stm_mesh_mark_more(n->mesh);
        n->walking = true;
    }
    stm_local_warn_origins(n->local);
}

/* ---- life (life.c makes and destroys the node) ---- */

/* What the node says once, as it starts running. */
static void s_say_started(node_t *n)
{
    stm_log_event(STM_LOG_INFO, "started", n->short_id, "%s v%d on %s, control %s, %s, named \"%s\"",
                  stm_lineage_name(stm_local_lineage(n->local)), stm_local_version(n->local),
                  stm_inbox_endpoint(n->inbox)[0] ? stm_inbox_endpoint(n->inbox) : "no endpoint",
                  stm_control_endpoint(n->control),
                  n->insecure ? "INSECURE (plain TCP)" : "CURVE", n->name);
    if (!stm_inbox_endpoint(n->inbox)[0])
        stm_log_event(STM_LOG_INFO, "advertise", NULL,
                      "bound nowhere ([node] bind is \"\"): this node dials its peers, and "
                      "they answer on its connections; none can dial it");
    else if (!n->advertise[0] && n->beacon && stm_beacon_sending(n->beacon))
        stm_log_event(STM_LOG_INFO, "advertise", NULL,
                      "%s is a wildcard address and [node] advertise is not set: nodes that "
                      "hear this node's beacons dial it at the address a beacon comes from; "
                      "others reach it only if they list it in [peers]",
                      stm_inbox_endpoint(n->inbox));
    else if (!n->advertise[0])
        stm_log_event(STM_LOG_WARN, "advertise", NULL,
                      "%s is a wildcard address and [node] advertise is not set: peers are "
                      "told no endpoint, so only those that list this node in [peers] can "
                      "reach it; set advertise to tcp://HOST:PORT with an address they can "
                      "dial",
                      stm_inbox_endpoint(n->inbox));
    else if (strcmp(n->advertise, stm_inbox_endpoint(n->inbox)) != 0)
        stm_log_event(STM_LOG_INFO, "advertise", NULL, "peers are told %s", n->advertise);
    if (n->beacon && stm_beacon_sending(n->beacon))
        stm_log_event(STM_LOG_INFO, "discovery", NULL,
                      "beacons to %s:%d every %d ms, and listening for other nodes' there",
                      stm_beacon_broadcast(n->beacon), stm_beacon_port(n->beacon),
                      stm_beacon_interval_ms(n->beacon));
    else if (n->beacon)
        stm_log_event(STM_LOG_INFO, "discovery", NULL,
                      "listening for beacons on UDP %d; sending none: %s",
                      stm_beacon_port(n->beacon), n->no_beacon_why);
    if (stm_local_readonly(n->local))
        stm_log_event(STM_LOG_ERROR, "database", NULL,
                      "%s is read-only: operations from peers cannot be stored until it is "
                      "writable (they wait, and are tried again); reports and sending go on",
                      stm_local_path(n->local));
}

/* (node_internal.h) One pass of the loop: reads every socket ready within wait_ms (0:
 * only those ready now), runs the timers whose deadline has come and the before-sleep
 * step, and sets *next_ms to how long the loop may then sleep: until the earliest
 * deadline of the very list the timers ran from (-1: none armed, only a message wakes
 * it; 0: a peer's reader stopped in a slice of a long walk, which goes on at once). */
static stm_err s_pass(node_t *n, long wait_ms, long *next_ms, stm_error *err)
{
    *next_ms = 0;
    if (!n->started) {
        n->started = true;
        s_say_started(n);
    }
    size_t nitems = stm_node_poll_items(n);
    zmq_pollitem_t *items = n->poll_items;
    if (zmq_poll(items, (int)nitems, wait_ms) < 0) {
        if (zmq_errno() == EINTR)
            return STM_OK;
        return stm_zsock_error(err, "polling");
    }
    n->listened_ms = stm_monotime_ms();
    if (items[2].revents & ZMQ_POLLIN)
        stm_zap_handle(n->zap);
    if (items[0].revents & ZMQ_POLLIN)
        s_handle_inbox(n);
    if (items[1].revents & ZMQ_POLLIN)
        stm_control_handle(n->control, &n->view);
    if (items[3].revents & ZMQ_POLLIN)
        s_handle_beacons(n);
    for (size_t i = POLL_FIXED; i < nitems; i++)
        if (items[i].revents & ZMQ_POLLIN)
            s_handle_dealer(n, n->poll_peers[i - POLL_FIXED]);
    s_run_timers(n, stm_monotime_ms());
    s_before_sleep(n);
    int64_t next = n->walking ? 0 : s_next_due(n);
    *next_ms = -1; /* nothing armed: only a message wakes the loop */
    if (next != INT64_MAX) {
        int64_t wait = next - stm_monotime_ms();
        *next_ms = wait < 0 ? 0 : wait > INT_MAX ? INT_MAX : (long)wait;
    }
    return STM_OK;
}

/* Logged at node.toml's log_level or above, and at the thread's sink's. */
stm_err stm_node_pass(node_t *n, long wait_ms, long *next_ms, stm_error *err)
{
    log_level was = stm_log_raise_min(n->log_level);
    stm_err rc = s_pass(n, wait_ms, next_ms, err);
    stm_log_set_min(was);
    return rc;
}

stm_err stm_node_run(node_t *n, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
                     stm_error *err)
{
    long wait_ms = 0;
    while (!*stop) {
        if (reload && *reload) {
            /* systemctl reload sends SIGHUP: node.toml and known_peers read again. */
            *reload = 0;
            stm_node_reload(n);
        }
        stm_err rc = stm_node_pass(n, wait_ms, &wait_ms, err);
        if (rc != STM_OK)
            return rc;
    }
    stm_node_say_bye(n);
    return STM_OK;
}
