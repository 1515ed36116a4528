/* session_internal.h - private to session.c (batches) and session_vector.c (vectors
 * exchanged): the session's state, one struct for the two halves of one peer's
 * anti-entropy (session.h has the invariants). */
#ifndef STM_SESSION_INTERNAL_H
#define STM_SESSION_INTERNAL_H

#include "session.h"

/* How many vectors sent are remembered by their digest (invariant 10). */
#define SESSION_SENT_KEPT 16

/* What we hold of their vector (invariant 10). */
typedef enum {
    S_IN_NONE,    /* not all of it: a delta over it cannot be taken */
    S_IN_PARTIAL, /* the parts so far of a whole one (more follow) */
    S_IN_SYNCED,  /* all of it, as they last sent it */
} s_in;

/* Where a batch in flight started in the feed: sending starts there again when it is
 * lost (invariant 3). */
typedef struct {
    uint64_t seq;
    oplog_pos pos;
    uint64_t epoch; /* the feed's then (a reload makes pos mean nothing: feed.h) */
} s_flight;

struct session {
    int window;           /* most batches in flight */
    size_t batch_ops;     /* most operations a batch */
    vector_t *theirs;     /* what the peer said it holds (invariant 1) */
    vector_digest theirs_digest;
    vector_t *extra;      /* raised over theirs by what it sent us (invariant 6) */
    bool more;            /* it may lack operations we have not sent yet */
    uint64_t batch_seq;   /* batches numbered so far */
    uint64_t reset_seq;   /* batches up to this one were forgotten by a restart: their
                             ACKs still say what it holds, but free no window place */
    int in_flight;        /* batches sent and not acknowledged */
    s_flight *flights;    /* where each of them started (window entries) */
    int nflights;
    int64_t last_send_ms; /* when the window last started filling, or the last ACK */
    oplog_reader_t *reader; /* walks the feed for the peer, kept between passes; owned */
    feed_t *feed;         /* the feed it walks, lent */
    opbatch_t *pending;   /* the batch handed out last, until it is said to have left */
    bool have_pending;
    oplog_pos pending_pos; /* where it started */
    size_t pending_bytes; /* its encoded size */
    uint64_t limit;       /* the most bytes a row change may take to be sent (inv. 7) */
    uint64_t max_value;   /* ... and one of its values */
    bool alone;           /* a large batch is in flight, or waits for an empty window */
    uint64_t large_seq;   /* the large batch in flight (0: none) */
    uint64_t large_bytes; /* its encoded size */
    bool large_arrived;   /* the peer said all of it arrived: it is storing it */
    uint64_t ops_sent, ops_received, parked;
    /* Vectors exchanged (invariant 10). */
    bool deltas;          /* the peer takes deltas (vdelta.v1) */
    bool caps_known;      /* its HELLO said whether it does */
    bool out_synced;      /* it holds our vector as of out_gen, of digest out_digest */
    uint64_t out_gen;
    vector_digest out_digest;
    struct {
        uint64_t gen;
        vector_digest digest;
    } sent[SESSION_SENT_KEPT]; /* the last vectors sent whole or as deltas over a held
                                  one: a peer whose vknow names one of them (it missed
                                  those after it) is sent a delta from there */
    size_t nsent, sent_at;
    s_in in;              /* what we hold of theirs */
    bool continued;       /* the last vector taken continued our copy: no restart from
                             the feed's start at their HELLO */
    bool asked;           /* their whole vector was asked for since one last came */
    bool digests_differ;  /* a whole one came with another digest than ours for it */
    vector_out *outs;     /* the parts of our vector handed out last */
    size_t nouts, outs_cap;
    uint64_t vectors_cut; /* entries dropped from theirs, over VECTOR_MAX_ENTRIES */
};

/* Their vector fell (their database was put back in time, or they were restarted on
 * a copy): they may lack what they held, so what they sent us says nothing any more,
 * the batches in flight are forgotten and everything is read for them again. */
void stm_session_fell(session_t *s);
/* Drops the entries of extra that theirs has caught up with. */
void stm_session_prune_extra(session_t *s);
/* Frees what session_vector.c holds. */
void stm_session_vector_free(session_t *s);

#endif
