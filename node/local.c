/* local.c - the node's own database (local.h has the invariants). */
#include "local.h"
#include "admit.h"
#include "wire.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "lineage/cache.h"
#include "lineage/lens.h"
#include "lineage/schemaset.h"
#include "lineage/sqlscript.h"
#include "sync/migrate.h"
#include "sync/origin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct local {
    char *db_path, *schemas_dir;
    schemaset_layout layout; /* how schemas_dir names its migrations */
    inbound_t *inbound; /* lent: its busy handler goes on every connection opened */
    store_t *store;
    applier_t *applier;
    lineage_t *lineage;   /* the database's lineage (the schema set's, to its version) */
    lineage_t *set_lineage; /* the schema set's whole lineage, for the lenses */
    lens_set_t *lenses;   /* what its migrations do to the data: operations written at
                             other versions are translated through them (sync/apply.h) */
    int version;          /* the database's version */
    int schema_cookie;    /* to notice a migration made while running */
    int data_version;     /* PRAGMA data_version: changes when another connection commits */
    bool collect_failing; /* collecting the application's changes failed (logged once) */
    bool collecting;      /* a bulk write is being collected a slice a look: more queued */
    int64_t next_slice_ms; /* ... and the next slice not before this (the lock let go as
                              long as the last slice held it: sync/apply.h) */
    bool held_renewed;    /* stm_local_check_held took a new origin (at most once a run) */
    int64_t max_clock_ahead_ms; /* the applier's bound, set again on every new applier */
    admit_t *admit;       /* the policy per operation (stm_local_set_policy), the filter of
                             every applier made here; NULL: none */
    feed_t *feed;         /* the row changes in order of arrival and the vector (sync/feed.h),
                             told by every transaction of the applier's */
    bool sync_owed;       /* another program wrote: the feed is to be compared with the
                             database (invariant 5) */
    int64_t sync_after_ms; /* ... not before this (monotonic), so that with many origins it
                              takes at most a twentieth of the node's time */
    int origins_told;      /* how many of the origins' thresholds were logged */
};

/* The admit's lineages are this local's, replaced together (admit.h: lent). */
static void s_admit_refresh(local_t *l)
{
    if (l->admit)
        stm_admit_set_local(l->admit, l->lineage, l->set_lineage, l->lenses);
}

/* A new applier for l's store, with l's lenses, bound and filter. */
static void s_applier_make(local_t *l)
{
    l->applier = stm_applier_new(l->store, NULL, NULL);
    if (l->feed)
        stm_applier_set_listener(l->applier, stm_feed_listener(l->feed));
    stm_applier_set_lenses(l->applier, l->lenses, l->set_lineage);
    stm_applier_set_max_clock_ahead(l->applier, l->max_clock_ahead_ms);
    if (l->admit) {
        stm_applier_set_filter(l->applier, stm_admit_filter, l->admit);
        stm_applier_set_branches(l->applier, stm_admit_branch, l->admit);
    }
}

/* Reads where the database stands and makes the lineage it is at. */
static stm_err s_load_lineage(local_t *l, stm_error *err)
{
    migrate_t *m = NULL;
    char *cache = stm_cache_dir_from_env();
    stm_err rc = stm_migrate_open_layout(l->db_path, l->schemas_dir, l->layout, cache, &m, err);
    free(cache);
    if (rc != STM_OK)
        return rc;
    if (stm_migrate_cache_warning(m))
        stm_log_event(STM_LOG_WARN, "cache", NULL, "%s", stm_migrate_cache_warning(m));
    if (stm_migrate_drift_count(m))
        stm_log_event(STM_LOG_WARN, "drift", NULL, "%s", stm_migrate_drift_at(m, 0));
    stm_lineage_destroy(&l->lineage);
    l->version = stm_migrate_version(m);
    l->lineage = stm_lineage_prefix(stm_migrate_lineage(m), (size_t)l->version);
    s_admit_refresh(l);
    /* The lenses, derived again only when the schema set has new versions. */
    const lineage_version *head = stm_lineage_head(stm_migrate_lineage(m));
    const lineage_version *had = l->set_lineage ? stm_lineage_head(l->set_lineage) : NULL;
    if (!l->lenses || !head || !had || !stm_id_equal(&head->id, &had->id)) {
        lens_set_t *lenses = stm_migrate_take_lenses(m); /* from the cache */
        if (!lenses)
            rc = stm_lens_derive(stm_migrate_schemaset(m), &lenses, err);
        if (rc != STM_OK) {
            stm_migrate_destroy(&m);
            return rc;
        }
        if (l->applier)
            stm_applier_set_lenses(l->applier, NULL, NULL);
        stm_lens_destroy(&l->lenses);
        stm_lineage_destroy(&l->set_lineage);
        l->lenses = lenses;
        l->set_lineage = stm_lineage_prefix(stm_migrate_lineage(m), SIZE_MAX);
        s_admit_refresh(l);
        if (l->applier)
            stm_applier_set_lenses(l->applier, l->lenses, l->set_lineage);
    }
    stm_migrate_destroy(&m);
    /* A HELLO beyond the protocol's limits would be dropped by every peer. */
    if ((rc = stm_wire_check_lineage(l->lineage, err)) != STM_OK)
        return rc;
    l->schema_cookie = stm_sqlscript_schema_cookie(stm_store_db(l->store));
    return STM_OK;
}

static int s_data_version(local_t *l)
{
    sqlite3_stmt *stmt = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(stm_store_db(l->store), "PRAGMA data_version", -1, &stmt, NULL) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* Logs that the database took a new origin, and why. */
static void s_say_new_origin(local_t *l, const char *why)
{
    stm_id origin;
    char hex[STM_ID_SHORT_LEN + 1] = "?";
    if (stm_store_node_id(l->store, &origin, NULL) == STM_OK)
        stm_id_short(&origin, hex);
    stm_log_event(STM_LOG_WARN, "new-origin", NULL,
                  "%s: %s; its own writes carry origin %s from now on (those from before keep "
                  "theirs), so that none of them is lost",
                  l->db_path, why, hex);
}

/* Logs a new origin the applier's transactions took. The database was copied or put
 * back in time: its vector may have fallen, which the feed learns at once, before any
 * peer is told (sync/feed.h, invariant 5). */
static void s_log_origin(local_t *l)
{
    origin_change c = stm_applier_origin_change(l->applier);
    if (c != ORIGIN_KEPT) {
        s_say_new_origin(l, stm_origin_change_text(c));
        l->sync_owed = true;
        l->sync_after_ms = 0;
    }
}

stm_err stm_local_open(const char *db_path, const char *schemas_dir, schemaset_layout layout,
                       inbound_t *inbound, local_t **out, stm_error *err)
{
    local_t *l = stm_calloc(1, sizeof *l);
    l->db_path = stm_strdup(db_path);
    l->schemas_dir = stm_strdup(schemas_dir);
    l->layout = layout;
    l->inbound = inbound;
    stm_err rc = stm_store_open(db_path, STORE_OPEN_EXISTING, &l->store, err);
    if (rc == STM_OK) {
        stm_inbound_watch(inbound, l->store);
        if (!stm_store_is_prepared(l->store))
            rc = stm_error_set(err, STM_EINPUT,
                               "%s: not set up for stemma; run stemma migrate first", db_path);
    }
    if (rc == STM_OK)
        rc = stm_store_check_format(l->store, err);
    if (rc == STM_OK)
        rc = s_load_lineage(l, err);
    /* Every row change stored, in order of clock, and the vector (sync/feed.h). */
    if (rc == STM_OK)
        rc = stm_feed_open(l->store, &l->feed, err);
    if (rc != STM_OK) {
        stm_local_destroy(&l);
        return rc;
    }
    /* The first transaction (the first look, or a batch from a peer) takes a new origin
     * when the database is a copy or was restored (sync/origin.h); stm_local_look logs
     * it. Nothing is written here: the file may be read-only for now. */
    l->max_clock_ahead_ms = APPLY_MAX_CLOCK_AHEAD_MS;
    s_applier_make(l);
    /* Writes made while no node ran are still queued: the first look collects them. */
    l->data_version = -1;
    *out = l;
    return STM_OK;
}

void stm_local_check_held(local_t *l, const vector_t *theirs)
{
    /* Once a run: a database goes back in time before the node starts, and a peer that
     * kept claiming more of each new origin would make it take one per HELLO, growing
     * every vector in the mesh. */
    if (l->held_renewed)
        return;
    origin_change c = ORIGIN_KEPT;
    stm_error err = {0};
    if (stm_origin_check_held(l->store, theirs, &c, &err) != STM_OK) {
        stm_log_event(STM_LOG_ERROR, "database", NULL, "%s", err.msg);
    } else if (c != ORIGIN_KEPT) {
        l->held_renewed = true;
        s_say_new_origin(l, stm_origin_change_text(c));
    }
}

stm_err stm_local_mark_sent(local_t *l, stm_id *origin, stm_error *err)
{
    return stm_origin_mark_sent(l->store, origin, err);
}

void stm_local_set_max_clock_ahead(local_t *l, int64_t ms)
{
    l->max_clock_ahead_ms = ms;
    stm_applier_set_max_clock_ahead(l->applier, ms);
}

void stm_local_set_policy(local_t *l, const peer_policy *p)
{
    stm_applier_set_filter(l->applier, NULL, NULL);
    stm_applier_set_branches(l->applier, NULL, NULL);
    stm_admit_destroy(&l->admit);
    l->admit = stm_admit_new(p);
    s_admit_refresh(l);
    stm_applier_set_filter(l->applier, stm_admit_filter, l->admit);
    stm_applier_set_branches(l->applier, stm_admit_branch, l->admit);
}

admit_t *stm_local_admit(local_t *l)
{
    return l->admit;
}

void stm_local_destroy(local_t **self_p)
{
    local_t *l = *self_p;
    if (!l)
        return;
    stm_applier_destroy(&l->applier);
    stm_admit_destroy(&l->admit);
    stm_feed_destroy(&l->feed);
    stm_store_destroy(&l->store);
    stm_lineage_destroy(&l->lineage);
    stm_lineage_destroy(&l->set_lineage);
    stm_lens_destroy(&l->lenses);
    free(l->db_path);
    free(l->schemas_dir);
    free(l);
    *self_p = NULL;
}

store_t *stm_local_store(local_t *l)
{
    return l->store;
}

applier_t *stm_local_applier(local_t *l)
{
    return l->applier;
}

feed_t *stm_local_feed(local_t *l)
{
    return l->feed;
}

/* What other programs recorded joins the feed (sync/feed.h, invariant 5): after
 * another program wrote, at most once per twenty times what the last comparison took
 * (a read of the whole vector: 15-30 ms with 100,000 origins). True when something new
 * was found. The node's own writes are told to the feed as they commit, so this is
 * only for `stemma apply` and `stemma migrate` run beside a node. */
static bool s_sync_feed(local_t *l)
{
    int64_t now = stm_monotime_ms();
    if (!l->sync_owed || now < l->sync_after_ms)
        return false;
    size_t changed = 0;
    stm_error err = {0};
    if (stm_feed_sync(l->feed, &changed, &err) != STM_OK) {
        stm_log_event(STM_LOG_WARN, "database", NULL,
                      "%s (what other programs recorded is looked for again)", err.msg);
        return false;
    }
    int64_t took = stm_monotime_ms() - now;
    l->sync_owed = false;
    l->sync_after_ms = stm_monotime_ms() + 20 * took;
    return changed > 0;
}

const lineage_t *stm_local_lineage(const local_t *l)
{
    return l->lineage;
}

const lens_set_t *stm_local_lenses(const local_t *l)
{
    return l->lenses;
}

const lineage_t *stm_local_set_lineage(const local_t *l)
{
    return l->set_lineage;
}

int stm_local_version(const local_t *l)
{
    return l->version;
}

const char *stm_local_path(const local_t *l)
{
    return l->db_path;
}

bool stm_local_readonly(local_t *l)
{
    return sqlite3_db_readonly(stm_store_db(l->store), "main") == 1;
}

/* A migration's replay that was cut short (killed, disk full) is finished here: at the
 * first look after the node starts, and after another program wrote (a migrate that was
 * killed). Failing, it stays owed and is tried at the next look that follows a write. */
static void s_replay_owed(local_t *l)
{
    apply_stats st = {0};
    bool ran = false;
    stm_error err = {0};
    if (stm_applier_replay_owed(l->applier, &st, &ran, &err) != STM_OK)
        stm_log_event(STM_LOG_WARN, "replay", NULL,
                      "the replay a migration left unfinished: %s (tried again)", err.msg);
    else if (ran)
        stm_log_event(STM_LOG_INFO, "replay", NULL,
                      "finished the replay a migration left unfinished: %llu parked operations "
                      "applied",
                      (unsigned long long)st.replayed);
}

void stm_local_warn_origins(local_t *l)
{
    size_t origins = stm_vtrack_count(stm_feed_vector(l->feed));
    if (origins >= LOCAL_ORIGINS_WARN && l->origins_told < 1) {
        l->origins_told = 1;
        stm_log_event(STM_LOG_WARN, "origins", NULL,
                      "%zu origins: every device that ever wrote to this data is one, and "
                      "each is an entry of every version vector. Peers that list vdelta.v1 "
                      "are sent the entries that changed; older stemmas are sent whole "
                      "vectors of at most %u entries, and past that the entries of the "
                      "highest sequence only (they then send again what they think is "
                      "missing): upgrade them",
                      origins, VECTOR_MAX_ENTRIES);
    }
    if (origins > VECTOR_MAX_ENTRIES && l->origins_told < 2) {
        l->origins_told = 2;
        stm_log_event(STM_LOG_WARN, "origins", NULL,
                      "%zu origins, more than an older stemma takes in one vector (%u): it is "
                      "sent those of the highest sequence, and sends again operations of the "
                      "others that this node holds (duplicates change nothing)",
                      origins, VECTOR_MAX_ENTRIES);
    }
}

void stm_local_sync_feed(local_t *l)
{
    /* Put back in time, or a copy: read whole again (sync/feed.h, stm_feed_reload). */
    stm_error err = {0};
    if (stm_feed_reload(l->feed, &err) != STM_OK) {
        stm_log_event(STM_LOG_WARN, "database", NULL,
                      "%s (what the database holds is read again at the next look)", err.msg);
        l->sync_owed = true;
        l->sync_after_ms = 0;
    }
}

bool stm_local_sync_due(local_t *l)
{
    return s_sync_feed(l);
}

/* The application wrote (or a bulk write is still being collected): one slice of its
 * queued changes becomes operations to send, in a transaction of its own, so that the
 * node's loop, the application's writes and the peers go on between slices. Returns
 * LOCAL_WROTE when a slice was collected. */
static int s_collect(local_t *l)
{
    int dv = s_data_version(l);
    if (dv == l->data_version && !l->collecting)
        return 0;
    int64_t t0 = stm_monotime_ms();
    if (l->collecting && t0 < l->next_slice_ms)
        return 0;
    stm_error err = {0};
    bool more = false;
    stm_err rc = stm_applier_collect_slice(l->applier, APPLY_COLLECT_SLICE_ROWS, &more, &err);
    int64_t now = stm_monotime_ms();
    l->next_slice_ms = now + (now - t0);
    if (rc != STM_OK) {
        if (!l->collect_failing)
            stm_log_event(STM_LOG_WARN, "capture", NULL,
                          "%s: the application's changes wait in the queue; trying again",
                          err.msg);
        l->collect_failing = true;
        return 0;
    }
    l->collect_failing = false;
    l->collecting = more;
    if (!more) {
        l->data_version = dv; /* what it wrote after dv was read is looked at next time */
        l->sync_owed = true;  /* looked for after this pass's sends (stm_local_sync_due) */
        s_replay_owed(l);
    }
    return LOCAL_WROTE;
}

bool stm_local_collecting(local_t *l)
{
    return l->collecting;
}

int64_t stm_local_next_slice_ms(const local_t *l)
{
    return l->next_slice_ms;
}

bool stm_local_collect_first(local_t *l)
{
    s_collect(l);
    return l->collecting;
}

int stm_local_look(local_t *l)
{
    int found = s_collect(l);
    s_log_origin(l); /* a transaction of the applier's may have taken a new one */
    int cookie = stm_sqlscript_schema_cookie(stm_store_db(l->store));
    if (cookie == l->schema_cookie)
        return found;
    int before = l->version;
    stm_error err = {0};
    if (s_load_lineage(l, &err) != STM_OK) {
        stm_log_event(STM_LOG_ERROR, "schema", NULL, "%s", err.msg);
        l->schema_cookie = cookie;
    } else if (l->version != before) {
        found |= LOCAL_MIGRATED;
    }
    return found;
}

void stm_local_reopen_if_readonly(local_t *l)
{
    if (!stm_local_readonly(l))
        return;
    store_t *fresh = NULL;
    stm_error err = {0};
    if (stm_store_open(l->db_path, STORE_OPEN_EXISTING, &fresh, &err) != STM_OK)
        return;
    if (sqlite3_db_readonly(stm_store_db(fresh), "main") == 1) {
        stm_store_destroy(&fresh);
        return; /* the old store and applier are kept */
    }
    stm_applier_destroy(&l->applier);
    stm_store_destroy(&l->store);
    l->store = fresh;
    stm_feed_set_store(l->feed, fresh); /* readers hold no statement between passes */
    l->sync_owed = true; /* what was written while it could not be read */
    stm_inbound_watch(l->inbound, l->store);
    s_applier_make(l);
    l->data_version = s_data_version(l);
    stm_log_event(STM_LOG_INFO, "database", NULL, "%s is writable again: reopened", l->db_path);
}
