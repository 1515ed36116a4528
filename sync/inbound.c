/* inbound.c - the batches received and not stored yet, and the attempts to store them
 * (inbound.h has the invariants). */
#include "inbound.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/clock.h"

#include <stdlib.h>
#include <time.h>

/* What made the last attempt fail. */
typedef enum { S_FAULT_NONE, S_FAULT_BUSY, S_FAULT_IO } s_fault;

/* A batch received and not stored yet. */
typedef struct {
    void *sender;      /* the caller's tag for whoever sent it */
    uint64_t seq;      /* its batch number, for the ACK */
    opbatch_t *batch;  /* decoded; owned */
    size_t bytes;      /* its encoded size, for INBOUND_MAX_BYTES */
    apply_stats stats; /* what the attempt that stored it counted */
} s_item;

struct inbound {
    s_item *items; /* oldest first */
    size_t count, cap, bytes;
    int busy_timeout_ms;   /* how long one attempt waits for another program's lock */
    int64_t retry_at_ms;   /* when to try again; 0 after an attempt that worked */
    int retry_backoff_ms;  /* the wait after the next failure of the same kind */
    s_fault fault;         /* what failed the last attempt */
    int64_t busy_since_ms; /* when the busy handler started waiting */
    bool busy_gave_up;     /* it gave up during this attempt: the database was busy */
    uint64_t busy_failures, io_failures, deferred;
};

inbound_t *stm_inbound_new(int busy_timeout_ms)
{
    inbound_t *q = stm_calloc(1, sizeof *q);
    q->busy_timeout_ms = busy_timeout_ms;
    q->retry_backoff_ms = INBOUND_RETRY_MIN_MS;
    return q;
}

static void s_clear(inbound_t *q)
{
    for (size_t i = 0; i < q->count; i++)
        stm_opbatch_destroy(&q->items[i].batch);
    q->count = 0;
    q->bytes = 0;
}

void stm_inbound_destroy(inbound_t **self_p)
{
    inbound_t *q = *self_p;
    if (!q)
        return;
    s_clear(q);
    free(q->items);
    free(q);
    *self_p = NULL;
}

/* SQLite's busy handler: while another program holds the write lock, waits in short
 * sleeps, at most busy_timeout_ms from the first; then gives up, and notes that it
 * did, which is how a busy database is told from one that refused the write. */
static int s_busy(void *ctx, int count)
{
    inbound_t *q = ctx;
    static const int sleeps_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    int64_t now = stm_monotime_ms();
    if (count == 0)
        q->busy_since_ms = now;
    int64_t left = q->busy_timeout_ms - (now - q->busy_since_ms);
    if (left <= 0) {
        q->busy_gave_up = true;
        return 0;
    }
    int64_t ms = count < (int)(sizeof sleeps_ms / sizeof sleeps_ms[0]) ? sleeps_ms[count] : 100;
    if (ms > left)
        ms = left;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

void stm_inbound_watch(inbound_t *q, store_t *store)
{
    sqlite3_busy_handler(stm_store_db(store), s_busy, q);
}

bool stm_inbound_full(const inbound_t *q, size_t bytes)
{
    return q->count >= INBOUND_MAX_BATCHES || (q->count && q->bytes + bytes > INBOUND_MAX_BYTES);
}

bool stm_inbound_add(inbound_t *q, void *sender, uint64_t seq, opbatch_t **batch, size_t bytes)
{
    if (stm_inbound_full(q, bytes)) {
        q->deferred++;
        stm_opbatch_destroy(batch);
        return false;
    }
    q->items = stm_grow(q->items, &q->cap, q->count + 1, sizeof *q->items);
    q->items[q->count++] = (s_item){sender, seq, *batch, bytes, {0}};
    q->bytes += bytes;
    *batch = NULL;
    return true;
}

int64_t stm_inbound_due_at(const inbound_t *q)
{
    return q->count ? q->retry_at_ms : INT64_MAX;
}

bool stm_inbound_failing_io(const inbound_t *q)
{
    return q->fault == S_FAULT_IO;
}

bool stm_inbound_failing(const inbound_t *q)
{
    return q->fault != S_FAULT_NONE;
}

/* A failed attempt: everything is rolled back and every batch still waits. Said once
 * per run of failures of one kind; counted every time. */
static void s_failed(inbound_t *q, const stm_error *err)
{
    s_fault fault = q->busy_gave_up ? S_FAULT_BUSY : S_FAULT_IO;
    if (fault != q->fault)
        q->retry_backoff_ms = INBOUND_RETRY_MIN_MS;
    if (fault == S_FAULT_BUSY) {
        q->busy_failures++;
        if (q->fault != S_FAULT_BUSY)
            stm_log_event(STM_LOG_WARN, "busy", NULL,
                          "another program holds the database's write lock (waited %d ms): "
                          "received batches wait (%zu), unacknowledged, and are tried again",
                          q->busy_timeout_ms, q->count);
    } else {
        q->io_failures++;
        if (q->fault != S_FAULT_IO)
            stm_log_event(STM_LOG_ERROR, "apply", NULL,
                          "%s: received batches wait (%zu), unacknowledged, and are tried again "
                          "until the database takes them",
                          err->msg, q->count);
    }
    q->fault = fault;
    /* A busy handler has waited already: try again soon. Otherwise back off. */
    q->retry_at_ms = stm_monotime_ms() + q->retry_backoff_ms;
    if (fault == S_FAULT_IO)
        q->retry_backoff_ms = q->retry_backoff_ms * 2 > INBOUND_RETRY_MAX_MS
                                  ? INBOUND_RETRY_MAX_MS
                                  : q->retry_backoff_ms * 2;
}

bool stm_inbound_store(inbound_t *q, applier_t *applier, store_t *store, inbound_ack_fn ack,
                       void *ctx)
{
    if (!q->count)
        return false;
    stm_error err = {0};
    q->busy_gave_up = false;
    stm_err rc = stm_applier_begin(applier, &err);
    for (size_t i = 0; i < q->count && rc == STM_OK; i++) {
        q->items[i].stats = (apply_stats){0};
        rc = stm_applier_apply(applier, q->items[i].batch, &q->items[i].stats, &err);
    }
    if (rc == STM_OK)
        rc = stm_applier_commit(applier, &err);
    else
        stm_applier_rollback(applier);
    if (rc != STM_OK) {
        s_failed(q, &err);
        return false;
    }
    if (q->fault != S_FAULT_NONE)
        stm_log_event(STM_LOG_INFO, "apply", NULL,
                      "the database takes writes again: stored the "
                      "received batches that waited (%zu)",
                      q->count);
    q->fault = S_FAULT_NONE;
    q->retry_at_ms = 0;
    /* Acknowledged after the commit (invariant 1), with the vector it left, which the
     * transaction told its listener as it committed: nothing is read per origin here. */
    (void)store;
    for (size_t i = 0; i < q->count; i++)
        ack(ctx, q->items[i].sender, q->items[i].seq, q->items[i].batch, &q->items[i].stats);
    s_clear(q);
    return true;
}

size_t stm_inbound_count(const inbound_t *q)
{
    return q->count;
}

uint64_t stm_inbound_busy_failures(const inbound_t *q)
{
    return q->busy_failures;
}

uint64_t stm_inbound_io_failures(const inbound_t *q)
{
    return q->io_failures;
}

uint64_t stm_inbound_deferred(const inbound_t *q)
{
    return q->deferred;
}
