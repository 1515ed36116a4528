/* peer.h - one peer of the node: how to reach it, what it said, where the
 * conversation with it stands, and when to act on it next.
 *
 * The peer owns its DEALER (the connection this node opens to it), the route of the
 * connection it opened to this node (inbox.h) if any, its last HELLO and our
 * verdict on it (judge.h), the reason it refused us, its sync session (sync/session.h:
 * vectors, window, batch numbers), the batch it sends in parts being put together
 * (parts.h), and its deadlines: the next HELLO while it has not
 * answered, its silence, and the resend of unacknowledged batches. The node owns the
 * peers, finds them, and says what happened; the peer changes its state only through
 * stm_peer_set_state, which checks the transition against the table in peer.c (the state
 * diagram is written there). */
#ifndef STM_PEER_H
#define STM_PEER_H

#include "base/buf.h"
#include "base/error.h"
#include "base/id.h"
#include "admit.h"
#include "inbox.h"
#include "judge.h"
#include "parts.h"
#include "report.h"
#include "sync/session.h"
#include "bulk.h"
#include "sync/store.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef enum {
    PEER_CONNECTING, /* HELLOs sent, none of its own judged yet */
    PEER_CONNECTED,  /* its HELLO judged full or partial: operations flow */
    PEER_GONE,       /* it was connected, then fell silent or said BYE */
    PEER_REFUSED,    /* we refused its HELLO, or it refused ours */
} peer_state;
#define PEER_STATES 4

/* "connecting", "connected", "gone", "refused": static. */
const char *stm_peer_state_name(peer_state s);
/* Whether the table in peer.c allows from -> to (for tests and the debug check). */
bool stm_peer_transition_legal(peer_state from, peer_state to);

/* What every peer of a node is given (copied by stm_peer_new). */
typedef struct {
    int window;           /* OPS in flight */
    int batch_ops;        /* operations an OPS */
    int reconnect_min_ms; /* HELLO retries start at this backoff */
    int reconnect_max_ms; /* and double up to this */
    int peer_timeout_ms;  /* silence that makes a connected peer gone; also how long
                             unacknowledged batches wait before they are sent again */
    int heartbeat_ms;     /* a connected peer sent nothing for this long is sent a PING */
    int lazy_ms;          /* a peer that pruned this node is sent what it still lacks this
                             long after it was first found to lack something */
} peer_timing;

/* Who this node is, to open a DEALER to a peer (lent for the call). */
typedef struct {
    void *ctx;                   /* the node's ZeroMQ context */
    const stm_id *id;            /* this node's public key, its id */
    const unsigned char *secret; /* its secret key (32 bytes); unused when insecure */
    bool insecure;               /* no CURVE: say who we are by routing id instead */
} peer_self;

typedef struct peer peer_t;

/* A peer at endpoint ("": none to dial), CONNECTING and active, its first HELLO due at once. id
 * is NULL when not known yet (insecure, KEY@ omitted); configured says node.toml names
 * it (its endpoint is then never changed by what it says); inbox (lent, may be NULL) is
 * the node's, to answer on a connection the peer opened. The caller owns it
 * (stm_peer_destroy), which closes its DEALER. */
peer_t *stm_peer_new(const stm_id *id, const char *endpoint, bool configured,
                     const peer_timing *timing, inbox_t *inbox);
void stm_peer_destroy(peer_t **self_p);

/* ---- what it is ---- */

peer_state stm_peer_get_state(const peer_t *p);
/* Its id, lent; NULL while not known. */
const stm_id *stm_peer_id(const peer_t *p);
/* Learns its id (from a peer list naming its endpoint); no change when known. */
void stm_peer_set_id(peer_t *p, const stm_id *id);
/* Whether node.toml names it (its endpoint is then kept whatever it says), and the
 * change of that by `stemma peer add|remove`. */
bool stm_peer_configured(const peer_t *p);
void stm_peer_set_configured(peer_t *p, bool configured);
/* Its endpoint and short id (for logs; "?" while its id is unknown), lent. */
const char *stm_peer_endpoint(const peer_t *p);
const char *stm_peer_short_id(const peer_t *p);
/* Its last HELLO and our verdict on it, lent until the next HELLO; NULL before one. */
const wire_hello *stm_peer_hello(const peer_t *p);
const peer_verdict *stm_peer_get_verdict(const peer_t *p);
/* The reason it gave when it refused us, lent; NULL when it has not. */
const char *stm_peer_refused_by(const peer_t *p);
/* Its sync session, lent (the peer owns it). */
session_t *stm_peer_session(peer_t *p);
/* Its bulk sync's progress (bulk.h), lent. */
bulk_sync *stm_peer_bulk(peer_t *p);
/* When it was last heard from, wall clock; 0: never. */
time_t stm_peer_last_seen(const peer_t *p);

/* ---- the one transition function ---- */

/* Moves p to state. An illegal transition is a bug in the node, and asserts. */
void stm_peer_set_state(peer_t *p, peer_state state);

/* ---- active or only known (mesh.h chooses) ---- */

/* Whether this node talks to it: an active peer is dialled, said HELLO, sent
 * operations and PINGs; an inactive one is only remembered (invariant 8 in peer.c). */
bool stm_peer_active(const peer_t *p);
/* Makes it active: HELLOs to it start at now_ms with the least backoff. */
void stm_peer_activate(peer_t *p, int64_t now_ms);
/* Makes it inactive: its DEALER closes, the route of its connection is forgotten, and a
 * CONNECTED peer is GONE. Nothing is sent to it and nothing it sends revives it until
 * stm_peer_activate. */
void stm_peer_deactivate(peer_t *p);

/* ---- what it says ---- */

/* Its HELLO (ownership taken; *h is zeroed): keeps it, judges it against local by
 * policy, starts the session again from its vector, and moves to CONNECTED, or to
 * REFUSED when we refuse it or its refusal of us stands (a HELLO of its own, not a
 * reply, lifts that). The caller sends what follows by the state and the verdict. */
void stm_peer_on_hello(peer_t *p, wire_hello *h, const lineage_t *local, const peer_policy *policy,
                       int64_t now_ms);
/* Its REFUSE, with reason (ownership taken, *reason set to NULL): REFUSED. Returns
 * whether the reason is new (to log it once). */
bool stm_peer_on_refuse(peer_t *p, char **reason);
/* Its BYE: a connected peer is GONE and is asked again after reconnect_min_ms.
 * Returns whether it was connected. */
bool stm_peer_on_bye(peer_t *p, int64_t now_ms);
/* Any message but a HELLO: a sign of life. A GONE peer whose last HELLO we accepted is
 * CONNECTED again. */
void stm_peer_heard(peer_t *p, int64_t now_ms);

/* Judges its last HELLO again, after our own database migrated. Only the state that
 * follows from the new verdict changes, and only by a legal transition: a connected
 * peer we now refuse is REFUSED; a gone peer stays gone, and one refused (by us or by
 * it) stays refused, until its answer to our new HELLO is judged. */
void stm_peer_rejudge(peer_t *p, const lineage_t *local, const peer_policy *policy);
/* After judging: names what lenses translate between its head and ours (judge.h,
 * stm_judge_follow; lenses and set lent, NULL: nothing), through its branch's lenses
 * too when admit (lent, or NULL) learned them from its HELLO. The state does not
 * change. */
void stm_peer_follow(peer_t *p, const lens_set_t *lenses, const lineage_t *set, admit_t *admit,
                     const peer_policy *policy);

/* Its key is no longer trusted here (`stemma trust remove`): it is sent a REFUSE with
 * reason (which gets PEER_DISTRUST_LINGER_MS to leave), its DEALER is closed, and it is
 * REFUSED, never asked again and never reopened, until stm_peer_trust_again. */
#define PEER_DISTRUST_LINGER_MS 1000
void stm_peer_distrust(peer_t *p, const char *reason);
/* Its key is trusted again: HELLOs to it start at once with the least backoff. */
void stm_peer_trust_again(peer_t *p, int64_t now_ms);
/* Why this node stopped trusting it, lent; NULL while it trusts it. */
const char *stm_peer_distrusted(const peer_t *p);

/* ---- lazy links (docs/protocol.md, "PRUNE and GRAFT") ----
 *
 * A link is eager (operations go as soon as the peer lacks them) or lazy (only the
 * sender's vector goes, as it changes). The receiver decides: it prunes a peer whose
 * batches it holds already, another peer being faster, and grafts it again when that
 * peer holds what it lacks and it has not moved on for lazy_ms: its other path failed.
 * So an operation crosses about one link per node, whatever the mesh's links. */

/* Its PRUNE: it gets what this node holds from another first. It is sent no operations,
 * and hears our vector as it changes (stm_peer_wants_vector), until its GRAFT. */
void stm_peer_on_prune(peer_t *p);
/* Both directions of the link eager again, as at every HELLO that is not a reply, sent
 * or received: the PRUNEs of the conversation before are forgotten on both sides (a
 * side that forgot its own and not the other's would wait for operations sent only as
 * vectors, and never GRAFT). */
void stm_peer_links_eager(peer_t *p);
/* Its GRAFT (its vector, carried, taken first): it is sent what it lacks again. */
void stm_peer_on_graft(peer_t *p);
/* Whether it must hear our vector of generation gen (sync/vtrack.h): it pruned us, is
 * connected, and was not told that one yet; and that it was told. */
bool stm_peer_wants_vector(const peer_t *p, uint64_t gen);
void stm_peer_told_vector(peer_t *p, uint64_t gen);

/* Sends it a PRUNE, when it is connected, reads one (it lists WIRE_CAP_MESH and
 * WIRE_CAP_VDELTA) and is not pruned already. Returns whether one went. */
bool stm_peer_prune(peer_t *p);
/* Whether it is connected and not pruned: it sends to this node as soon as it can. */
bool stm_peer_sends_eagerly(const peer_t *p);
/* A pruned peer, looked at now_ms against mine, our vector: true when it is due a GRAFT
 * (stm_peer_graft), because it holds something we lack and we have not moved on (mine's
 * generation) for lazy_ms since it was first seen to. Called when its vector comes, and
 * when that wait ends (stm_peer_graft_at: INT64_MAX when none is under way). */
bool stm_peer_check_graft(peer_t *p, const vtrack_t *mine, int64_t now_ms);
int64_t stm_peer_graft_at(const peer_t *p);
/* Sends it a GRAFT carrying graft (our vector's first part, as stm_session_vector_out
 * gives it; lent): it is eager again. */
void stm_peer_graft(peer_t *p, const vector_out *graft);

/* ---- deadlines: when each is due (INT64_MAX: not armed), and what runs then ---- */

/* The next HELLO, while it has not answered (CONNECTING, GONE) or refused us. */
int64_t stm_peer_hello_at(const peer_t *p);
/* A HELLO went at now_ms: the next one after the backoff, which doubles (up to
 * reconnect_max_ms) when retry is true (the timer's retries), not when the HELLO
 * answered something it sent. */
void stm_peer_hello_sent(peer_t *p, int64_t now_ms, bool retry);
/* When a connected peer counts as gone: more than peer_timeout_ms after it was last
 * heard from. */
int64_t stm_peer_silent_at(const peer_t *p);
/* That deadline passed: GONE, and HELLOs start again at once with the least backoff. */
void stm_peer_on_silence(peer_t *p, int64_t now_ms);
/* When a connected peer is due a PING: heartbeat_ms after the last message sent to it
 * (or the last PING tried), so that a link busy with other messages carries none. */
int64_t stm_peer_ping_at(const peer_t *p);
/* That deadline passed: a PING, tried at now_ms. */
void stm_peer_ping(peer_t *p, int64_t now_ms);
/* When unacknowledged batches to a connected peer count as lost (session.h). */
int64_t stm_peer_resend_at(const peer_t *p);
/* That deadline passed: send again from what it last said it holds. */
void stm_peer_resend(peer_t *p);

/* ---- sending ---- */

/* Opens its DEALER when not open yet, at now_ms. STM_EINPUT when it cannot be reached
 * (its key is needed and not known; a bad endpoint); STM_ESYS when a socket option
 * fails. */
STM_NODISCARD stm_err stm_peer_open(peer_t *p, const peer_self *self, int64_t now_ms,
                                    stm_error *err);
/* At a HELLO retry: whether its DEALER should be closed and opened again (see
 * stm_peer_redial), because nothing has come from it for reconnect_max_ms since the
 * DEALER was opened while it is CONNECTING or GONE. */
bool stm_peer_redial_due(const peer_t *p, int64_t now_ms);
/* Closes its DEALER so that the next stm_peer_open dials anew. libzmq never dials
 * again on a connection whose CURVE handshake the other side refused (its ZAP
 * handler did not trust our key): without this a side once refused stays CONNECTING
 * until restarted, even after the other side trusts it. Returns whether this is the
 * first redial since it was last heard from (to log it once). */
bool stm_peer_redial(peer_t *p);
/* Its beacon (LAN discovery) comes from endpoint: when it is not configured, not
 * distrusted, CONNECTING or GONE, and has no other endpoint, or has not answered at it
 * for reconnect_max_ms since its DEALER was opened (stm_peer_redial_due), it is
 * dialled there from now on: its DEALER is closed, and a HELLO is due at now_ms.
 * Returns whether it moved. A beacon is a claim: a peer that answers where it is stays
 * there, and one moved back and forth moves at most once every reconnect_max_ms. */
bool stm_peer_move(peer_t *p, const char *endpoint, int64_t now_ms);
/* A message of its came on the connection it opened to this node: route (1 to
 * INBOX_MAX_ROUTE bytes, copied) names that connection, address (copied; NULL or "":
 * not known) where it comes from. Messages to it go there from now on. */
void stm_peer_set_route(peer_t *p, const void *route, size_t len, const char *address);
/* Whether it is answered on a connection it opened to this node: one is known to be
 * open, and its HELLO said it reads answers there (WIRE_CAP_ROUTE). */
bool stm_peer_routed(const peer_t *p);
/* Sends a whole message without waiting: on the connection it opened to this node
 * while that is open, else on its DEALER. False when it could not leave now (no way to
 * it yet, or the queue is full). */
bool stm_peer_send(peer_t *p, const buf_t *msg);
/* Sends msg on the connection named by route (len bytes, as the inbox gave it), active
 * or not, without keeping that route: the answer to a HELLO that just came on it, from
 * a peer that reads answers there (WIRE_CAP_ROUTE), when this node does not keep the
 * peer. False when it could not leave now. */
bool stm_peer_answer(peer_t *p, const void *route, size_t len, const buf_t *msg);
/* Its DEALER, to poll for what it answers there (lent); NULL when not open. */
void *stm_peer_socket(peer_t *p);
/* Reads the next whole message it sent on its DEALER without waiting: its first
 * frame, lent in *data and *len until the next call or the DEALER closes. False when
 * none waits. */
bool stm_peer_next(peer_t *p, const void **data, size_t *len);
/* Sends a connected peer what it lacks from feed (lent; the session's reader walks it,
 * sync/session.h), within its window: a batch over WIRE_PART_BYTES in parts when it reads
 * them (WIRE_CAP_PARTS); a row change too large for it as a stand-in, logged
 * ("withheld") and counted once. True when the read stopped to let the node serve its
 * sockets (a long walk is cut into slices): the loop comes back without sleeping. */
bool stm_peer_pump(peer_t *p, feed_t *feed, int64_t now_ms);

/* ---- a batch it sends in parts ---- */

/* Part m of a batch it sends (m->parts set): taken into its assembly (parts.h) and
 * answered with a RECEIVED, or dropped (PARTS_DROPPED: *dropped parts, *why says why).
 * PARTS_DONE: *batch, *len are the whole batch, lent until stm_peer_parts_done. */
parts_result stm_peer_on_part(peer_t *p, const wire_ops *m, const void **batch, size_t *len,
                              uint64_t *dropped, const char **why);
/* The whole batch was handed on: its memory goes. */
void stm_peer_parts_done(peer_t *p);

/* Fills rp for a report: strings, lineage and verdict are lent by p until it changes.
 * mine is this database's vector (NULL: a lag of 0). */
void stm_peer_report(const peer_t *p, report_peer *rp, const vtrack_t *mine);
/* Bytes handed to ZeroMQ for it, every message counted (before CURVE); and of the
 * messages of one type (wire_type; 0: of a type it does not know). */
uint64_t stm_peer_bytes_sent(const peer_t *p);
#define PEER_MESSAGE_TYPES 10
uint64_t stm_peer_bytes_of(const peer_t *p, unsigned type);
/* What is logged once per peer: our vectors cut for it (an older peer), its cut here. */
#define PEER_TOLD_CUT_OUT 1u
#define PEER_TOLD_CUT_IN 2u
/* ... and that it does not keep this node, or this node not it (mesh.h). */
#define PEER_TOLD_FULL 4u
/* True the first time only for what. */
bool stm_peer_tell_once(peer_t *p, unsigned what);

#endif
