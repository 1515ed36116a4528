/* session_vector.c - the vectors one peer and this node exchange: what each holds of the
 * other's, whole or as deltas over a digest (session.h, invariant 10; the bytes are
 * docs/protocol.md's "Vector deltas"). */
#include "session_internal.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

void stm_session_vector_free(session_t *s)
{
    for (size_t i = 0; i < s->outs_cap; i++)
        stm_buf_free(&s->outs[i].entries);
    free(s->outs);
    s->outs = NULL;
    s->nouts = s->outs_cap = 0;
}

void stm_session_set_deltas(session_t *s, bool deltas)
{
    s->deltas = deltas;
    s->caps_known = true;
}

bool stm_session_deltas(const session_t *s)
{
    return s->deltas;
}

bool stm_session_older(const session_t *s)
{
    return s->caps_known && !s->deltas;
}

/* ---- theirs ---- */

/* True when said (their entries, as a message gave them; every origin when whole)
 * holds less of an origin than they sent us (extra): they hold less than they did. */
static bool s_below_sent(const session_t *s, const vector_t *said, bool whole)
{
    if (whole) {
        for (size_t i = 0; i < stm_vector_count(s->extra); i++) {
            const vector_entry *e = stm_vector_at(s->extra, i);
            if (e->seq > stm_vector_get(said, &e->origin))
                return true;
        }
        return false;
    }
    for (size_t i = 0; said && stm_vector_count(s->extra) && i < stm_vector_count(said); i++) {
        const vector_entry *e = stm_vector_at(said, i);
        if (stm_vector_get(s->extra, &e->origin) > e->seq)
            return true;
    }
    return false;
}

/* A whole vector of theirs (or its first part). */
static session_vector s_take_whole(session_t *s, vector_msg *m)
{
    vector_digest before = s->theirs_digest;
    bool held = s->in == S_IN_SYNCED;
    vector_t *now = m->entries ? m->entries : stm_vector_new();
    m->entries = NULL;
    /* Fell (below what it said, or what it sent us) only when all of it came: a part
     * says nothing of the origins it leaves out. */
    bool all = !m->more && !m->part && !m->cut;
    bool fell = all && (stm_vector_fell(s->theirs, now) || s_below_sent(s, now, true));
    if (fell)
        stm_session_fell(s);
    stm_vector_destroy(&s->theirs);
    s->theirs = now;
    stm_vector_digest_of(s->theirs, &s->theirs_digest);
    stm_session_prune_extra(s);
    s->vectors_cut += m->cut;
    s->asked = false;
    /* The same vector again (an older peer sends it whole every time): nothing it held
     * is in doubt, so its HELLO need not start the walk over. */
    s->continued = held && !fell && !m->more &&
                   stm_vector_digest_equal(&before, &s->theirs_digest);
    if (m->part || m->cut) {
        s->in = S_IN_NONE; /* not all of it: its sender follows with the whole */
        return SESSION_VECTOR_TAKEN;
    }
    if (m->has_digest && !stm_vector_digest_equal(&m->digest, &s->theirs_digest)) {
        /* Asking again would bring the same: deltas cannot work with this peer. */
        s->in = S_IN_NONE;
        s->continued = false;
        bool first = !s->digests_differ;
        s->digests_differ = true;
        return first ? SESSION_VECTOR_DIFFERS : SESSION_VECTOR_TAKEN;
    }
    s->in = m->more ? S_IN_PARTIAL : S_IN_SYNCED;
    return SESSION_VECTOR_TAKEN;
}

session_vector stm_session_take_vector(session_t *s, vector_msg *m)
{
    session_vector r;
    if (!m->delta) {
        r = s_take_whole(s, m);
        stm_vector_msg_clear(m);
        return r;
    }
    bool based = (s->in == S_IN_SYNCED || s->in == S_IN_PARTIAL) &&
                 stm_vector_digest_equal(&m->base, &s->theirs_digest);
    bool was_synced = s->in == S_IN_SYNCED;
    /* Set even when it is not over our copy: these are their entries as they are. One
     * that fell (their database was put back in time) means they hold less than we
     * thought: what we sent them is in doubt. */
    bool below = m->entries && s_below_sent(s, m->entries, false);
    bool fell = m->entries && stm_vector_merge(s->theirs, m->entries, &s->theirs_digest);
    fell = fell || below;
    if (fell)
        stm_session_fell(s);
    stm_session_prune_extra(s);
    s->vectors_cut += m->cut;
    bool checks = !m->has_digest || stm_vector_digest_equal(&m->digest, &s->theirs_digest);
    s->continued = false;
    if (based && checks && !m->cut) {
        s->in = m->more ? S_IN_PARTIAL : S_IN_SYNCED;
        s->continued = was_synced && !fell; /* over the whole we held: it holds as much */
        r = SESSION_VECTOR_TAKEN;
    } else {
        s->in = S_IN_NONE;
        r = s->asked || s->digests_differ ? SESSION_VECTOR_TAKEN : SESSION_VECTOR_ASK;
        s->asked = true;
    }
    stm_vector_msg_clear(m);
    return r;
}

bool stm_session_knows_theirs(const session_t *s, vector_digest *out)
{
    if (s->in != S_IN_SYNCED || s->digests_differ)
        return false;
    *out = s->theirs_digest;
    return true;
}

uint64_t stm_session_vectors_cut(const session_t *s)
{
    return s->vectors_cut;
}

/* ---- ours ---- */

void stm_session_told_knows(session_t *s, const vector_digest *know)
{
    if (know && s->out_synced && stm_vector_digest_equal(know, &s->out_digest))
        return;
    /* One of the last ones sent: what followed it was lost (a connection dialled anew
     * drops what waited in it). A delta from there brings it up to date. */
    for (size_t i = 0; know && i < s->nsent; i++)
        if (stm_vector_digest_equal(know, &s->sent[i].digest)) {
            s->out_synced = true;
            s->out_gen = s->sent[i].gen;
            s->out_digest = s->sent[i].digest;
            return;
        }
    s->out_synced = false;
}

void stm_session_vector_sent(session_t *s)
{
    /* A whole vector's parts are large; kept between messages, each peer would hold one. */
    for (size_t i = 0; i < s->outs_cap; i++)
        if (s->outs[i].entries.cap > 65536)
            stm_buf_free(&s->outs[i].entries);
}

bool stm_session_vector_synced(const session_t *s)
{
    return s->out_synced;
}

void stm_session_vector_lost(session_t *s)
{
    s->out_synced = false;
    s->nsent = s->sent_at = 0; /* it holds none of them */
}

/* The next part handed out, emptied. */
static vector_out *s_part(session_t *s)
{
    if (s->nouts == s->outs_cap) {
        size_t was = s->outs_cap;
        s->outs = stm_grow(s->outs, &s->outs_cap, s->nouts + 1, sizeof *s->outs);
        memset(s->outs + was, 0, (s->outs_cap - was) * sizeof *s->outs);
    }
    vector_out *o = &s->outs[s->nouts++];
    buf_t keep = o->entries;
    memset(o, 0, sizeof *o);
    o->entries = keep;
    stm_buf_reset(&o->entries);
    return o;
}

size_t stm_session_vector_out(session_t *s, const vtrack_t *mine, const vector_out **parts)
{
    s->nouts = 0;
    size_t total = stm_vtrack_count(mine);
    vector_digest now;
    stm_vtrack_digest(mine, &now);
    if (!s->deltas) {
        /* Whole, as every stemma reads it; an older one refuses more than
         * VECTOR_MAX_ENTRIES, so a longer vector is cut to those of the highest seq: it
         * then sends us again what we hold of the others, and never fails to. Before its
         * HELLO says what it takes, at most VECTOR_PART_ENTRIES go (one that takes parts
         * is sent the rest once it says so; an older one is sent its most with our next
         * vector, and meanwhile sends some of what we hold: at most a window of it). */
        size_t most = s->caps_known ? VECTOR_MAX_ENTRIES : VECTOR_PART_ENTRIES;
        vector_out *o = s_part(s);
        o->part = total > most;
        stm_vtrack_encode_top(mine, most, &o->entries);
        o->has_digest = !o->part;
        o->digest = now;
        s->out_synced = !o->part;
    } else if (s->out_synced &&
               stm_vtrack_changed_count(mine, s->out_gen) <= VECTOR_PART_ENTRIES) {
        vector_out *o = s_part(s);
        o->delta = true;
        o->base = s->out_digest;
        stm_vtrack_encode_changed(mine, s->out_gen, &o->entries);
        o->has_digest = true;
        o->digest = now;
    } else {
        /* Whole, in parts of VECTOR_PART_ENTRIES: each after the first a delta over what
         * the ones before it hold. */
        size_t nparts = total ? (total + VECTOR_PART_ENTRIES - 1) / VECTOR_PART_ENTRIES : 1;
        vector_digest prefix = {{0, 0}};
        for (size_t k = 0; k < nparts; k++) {
            vector_out *o = s_part(s);
            o->delta = k > 0;
            o->base = prefix;
            stm_vtrack_encode_range(mine, k * VECTOR_PART_ENTRIES, (k + 1) * VECTOR_PART_ENTRIES,
                                    &o->entries, &prefix);
            o->has_digest = true;
            o->digest = prefix;
            o->more = k + 1 < nparts;
        }
        s->out_synced = true;
    }
    s->out_gen = stm_vtrack_gen(mine);
    s->out_digest = now;
    if (s->out_synced) {
        s->sent[s->sent_at].gen = s->out_gen;
        s->sent[s->sent_at].digest = now;
        s->sent_at = (s->sent_at + 1) % SESSION_SENT_KEPT;
        if (s->nsent < SESSION_SENT_KEPT)
            s->nsent++;
    }
    *parts = s->outs;
    return s->nouts;
}
