/* stemma.h - libstemma, the public C API of stemma: schema lineages, migrations, change
 * bundles and a sync node an application runs inside its own process.
 *
 * Link with `pkg-config --cflags --libs stemma` (shared) or `--static`. Every name
 * here starts with stemma_ (STEMMA_ for constants); the library exports nothing else.
 *
 * Conventions, the same for every function:
 *   - Handles are opaque. A function named _open or _load makes one, and the caller
 *     owns it; the matching _close or _free takes a pointer to the handle, frees it and
 *     sets it to NULL (safe on NULL, and twice).
 *   - A function that can fail returns a stemma_code and, given a stemma_error (err may
 *     be NULL), writes one line there that a user can act on. STEMMA_OK is 0. Codes are
 *     never renumbered.
 *   - A returned `const char *` is lent: it lives as long as the handle it came from
 *     (or, in a callback, for the call only). A returned `char *` is the caller's, to
 *     free with stemma_free.
 *   - Out of memory aborts the process (as SQLite's and libsodium's defaults do not,
 *     but as stemma's daemon does): no function returns a half-built value.
 *   - A handle is used by one thread at a time. A node running on its own thread
 *     (stemma_node_start) is the exception documented there.
 *
 * The user guide's chapter "Embedding stemma in C" walks through a whole program;
 * examples/embed_node.c is one. */
#ifndef STEMMA_H
#define STEMMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define STEMMA_API __attribute__((visibility("default")))
#else
#define STEMMA_API
#endif

/* This header's version; stemma_version() is the library's. CMake reads these three
 * lines for the project's version, so there is one place to change. */
#define STEMMA_VERSION_MAJOR 0
#define STEMMA_VERSION_MINOR 1
#define STEMMA_VERSION_PATCH 0

/* ---- errors ---- */

typedef enum {
    STEMMA_OK = 0,       /* success */
    STEMMA_EUSAGE = 1,   /* an argument is wrong, or the call is not allowed now */
    STEMMA_EINPUT = 2,   /* bad input: a file, a migration, a TOML document, node.toml */
    STEMMA_ECORRUPT = 3, /* stored data fails its own checks (a damaged bundle) */
    STEMMA_EPROTO = 4,   /* a peer broke the wire protocol */
    STEMMA_EDB = 5,      /* SQLite refused an operation */
    STEMMA_ESYS = 6,     /* the operating system refused (I/O, permissions, sockets) */
} stemma_code;

#define STEMMA_ERROR_MAX 1024

/* Where a failing call says why. A plain value: put one on the stack, pass its address. */
typedef struct {
    stemma_code code;               /* the code the call returned */
    char message[STEMMA_ERROR_MAX]; /* one line, no trailing newline */
} stemma_error;

/* A short description of a code ("bad input"): static, never NULL. */
STEMMA_API const char *stemma_strerror(stemma_code code);

/* Frees what a function here returned as `char *`. NULL is fine. */
STEMMA_API void stemma_free(void *p);

/* ---- versions ---- */

/* The library's version, "MAJOR.MINOR.PATCH": static. */
STEMMA_API const char *stemma_version(void);

typedef enum {
    STEMMA_FORMAT_WIRE = 1, /* the mesh protocol (docs/protocol.md) */
    STEMMA_FORMAT_BUNDLE,   /* bundle files written by stemma_db_write_changes */
    STEMMA_FORMAT_VECTOR,   /* vector files written by stemma_db_write_vector */
    STEMMA_FORMAT_STORE,    /* stemma's tables in a database */
} stemma_format;

/* The version of a format this library writes; 0 for an unknown one. */
STEMMA_API int stemma_format_version(stemma_format which);

/* ---- lineages: a schema's version history ---- */

typedef struct stemma_lineage stemma_lineage;

/* Loads the history at path: a directory of numbered migrations (run in memory, or
 * read from stemma's cache: STEMMA_CACHE_DIR, STEMMA_NO_CACHE) or a file written by
 * `stemma export` / stemma_lineage_export. *out is the caller's (stemma_lineage_free). */
STEMMA_API stemma_code stemma_lineage_load(const char *path, stemma_lineage **out,
                                           stemma_error *err);
/* The same, the directory read in the layout named (docs/user-guide.md, "Other tools'
 * layouts"): "stemma", "flyway", "diesel", "sqlx", "dbmate", "goose", "golang-migrate",
 * or "auto" (NULL too): found from its files, as stemma_lineage_load does. A name that is
 * none of these is STEMMA_EUSAGE. */
STEMMA_API stemma_code stemma_lineage_load_layout(const char *path, const char *layout,
                                                  stemma_lineage **out, stemma_error *err);
STEMMA_API void stemma_lineage_free(stemma_lineage **lineage);

/* The schema set's name (its directory's), lent. */
STEMMA_API const char *stemma_lineage_name(const stemma_lineage *lineage);
/* How many versions it has (the head is number stemma_lineage_count()). */
STEMMA_API size_t stemma_lineage_count(const stemma_lineage *lineage);

/* One version. A plain value; description is lent by the lineage. */
typedef struct {
    int number;              /* 1, 2, ... */
    char id[65];             /* the version id: 64 lowercase hex digits (docs/lineage.md) */
    char parent[65];         /* the id of number - 1; 64 zeros for version 1 */
    const char *description; /* from the file name ("add priority"), "" when unknown */
} stemma_version_info;

/* Version i (0 for version 1) into *out. STEMMA_EUSAGE when i is out of range. */
STEMMA_API stemma_code stemma_lineage_version(const stemma_lineage *lineage, size_t i,
                                              stemma_version_info *out, stemma_error *err);

/* The whole history as TOML (docs/toml-format.md), with what each migration does to
 * the data when the lineage was loaded from a directory. *toml is the caller's
 * (stemma_free). */
STEMMA_API stemma_code stemma_lineage_export(const stemma_lineage *lineage, char **toml,
                                             stemma_error *err);

/* ---- comparing two lineages ---- */

typedef enum {
    STEMMA_SAME = 0,       /* identical histories */
    STEMMA_ANCESTOR = 1,   /* local is an ancestor of remote: remote is newer */
    STEMMA_DESCENDANT = 2, /* local is newer */
    STEMMA_DIVERGENT = 3,  /* they parted after a common ancestor */
    STEMMA_UNRELATED = 4,  /* no common ancestor */
} stemma_relation;

typedef enum {
    STEMMA_COLUMN_SHARED = 0,      /* on both sides, alike */
    STEMMA_COLUMN_LOCAL_ONLY = 1,  /* only on the local side */
    STEMMA_COLUMN_REMOTE_ONLY = 2, /* only on the remote side */
    STEMMA_COLUMN_CONFLICTING = 3, /* on both, with another type or key role */
} stemma_column_relation;

/* "same", "ancestor", "descendant", "divergent", "unrelated": static. */
STEMMA_API const char *stemma_relation_name(stemma_relation relation);

typedef struct stemma_comparison stemma_comparison;

/* How remote relates to local, per history, per table and per column; renames are
 * followed when local was loaded from a directory and remote's head is one of its
 * versions. *out is the caller's (stemma_comparison_free); it keeps both lineages alive
 * as long as it lives. */
STEMMA_API stemma_code stemma_compare(stemma_lineage *local, stemma_lineage *remote,
                                      stemma_comparison **out, stemma_error *err);
STEMMA_API void stemma_comparison_free(stemma_comparison **comparison);

STEMMA_API stemma_relation stemma_comparison_relation(const stemma_comparison *c);
/* How many versions both share: the common ancestor is that version (0: none). */
STEMMA_API size_t stemma_comparison_common(const stemma_comparison *c);
/* The tables either side has, in order of name. */
STEMMA_API size_t stemma_comparison_table_count(const stemma_comparison *c);
/* Table i's name (lent by the comparison), and (relation may be NULL) how its two
 * histories relate; NULL when i is out of range. */
STEMMA_API const char *stemma_comparison_table(const stemma_comparison *c, size_t i,
                                               stemma_relation *relation);
/* Table i's columns of one kind: how many, and the j-th's name (lent; NULL when out of
 * range). */
STEMMA_API size_t stemma_comparison_column_count(const stemma_comparison *c, size_t i,
                                                 stemma_column_relation kind);
STEMMA_API const char *stemma_comparison_column(const stemma_comparison *c, size_t i,
                                                stemma_column_relation kind, size_t j);

/* ---- migrating a database ---- */

typedef enum {
    STEMMA_MIGRATE_DRIFT = 1,     /* message: why a run refuses (a file changed since) */
    STEMMA_MIGRATE_PLANNED,       /* a step the run will take: version, file, sql, down */
    STEMMA_MIGRATE_BACKUP,        /* path: the backup, taken before the first change */
    STEMMA_MIGRATE_ADOPTED,       /* version: an older tool's schema_version adopted */
    STEMMA_MIGRATE_STEP_STARTED,  /* version, file: its transaction begins */
    STEMMA_MIGRATE_STEP_RUNNING,  /* version, elapsed_ms: a long step still runs (told from
                                     inside SQLite: do not touch the database here) */
    STEMMA_MIGRATE_STEP_DONE,     /* version, elapsed_ms: committed */
    STEMMA_MIGRATE_STEP_FAILED,   /* version, elapsed_ms: rolled back; the error says why */
    STEMMA_MIGRATE_REPLAYED,      /* replayed, parked: parked operations retried */
    STEMMA_MIGRATE_CAPTURE_SET_UP, /* version: no step ran; change capture set up there */
    STEMMA_MIGRATE_BASELINED       /* version, rows: a database made without stemma recorded
                                      at the version its schema is, its rows made operations
                                      (options.baseline) */
} stemma_migrate_event_kind;

/* One event; every pointer lent for the call. */
typedef struct {
    stemma_migrate_event_kind kind;
    int version;             /* the step's migration number, or the version named above */
    int down;                /* 1: the step runs a rollback file */
    const char *file;        /* the step's file; NULL for events of no step */
    const char *description; /* the step's description; NULL for events of no step */
    const char *sql;         /* PLANNED: the text that will run; NULL otherwise */
    long long elapsed_ms;    /* STEP_RUNNING, _DONE, _FAILED */
    const char *path;        /* BACKUP: the backup's path */
    const char *message;     /* DRIFT: one line */
    uint64_t replayed;       /* REPLAYED: operations that applied */
    uint64_t parked;         /* REPLAYED: operations still parked */
    uint64_t rows;           /* BASELINED, ADOPTED: rows the database held, made operations */
} stemma_migrate_event;

/* Told of each event, on the calling thread, as it happens. */
typedef void (*stemma_migrate_fn)(void *user, const stemma_migrate_event *ev);

/* What a run does. Start from STEMMA_MIGRATE_OPTIONS_INIT. Pointers are lent for the call. */
typedef struct {
    int to;                     /* the version to reach; -1: the newest */
    int backup;                 /* 1: copy the database first (DB.vN-TIME.bak beside it) */
    int dry_run;                /* 1: tell the plan (DRIFT, PLANNED), rehearse it on a
                                   private copy, change nothing */
    const char *const *exclude; /* tables to keep out of sync */
    size_t nexclude;            /* entries in exclude */
    stemma_migrate_fn on_event; /* NULL: no one is told */
    void *user;                 /* on_event's first argument */
    int baseline;               /* 1: a database without schema_version that holds tables
                                   of the schema set (made without stemma) is recorded at the
                                   version its schema is exactly, its rows made operations
                                   any later write beats, and migrated on (`stemma migrate
                                   --baseline`); 0: such a database is refused */
    int baseline_version;       /* with baseline: the version it is at, when several
                                   versions have its schema (a migration that changes only
                                   data); its schema must be that one's too. 0: recognised */
} stemma_migrate_options;

#define STEMMA_MIGRATE_OPTIONS_INIT {-1, 1, 0, NULL, 0, NULL, NULL, 0, 0}

/* What a run did (or, dry, would do). A plain value. */
typedef struct {
    int from;             /* the version before */
    int version;          /* the version after (dry: the target) */
    size_t steps;         /* steps taken (dry: planned) */
    int nothing_to_do;    /* 1: nothing needed doing */
    uint64_t replayed;    /* parked operations that applied after the steps */
    uint64_t parked;      /* operations still parked after */
    uint64_t derived_ops; /* operations made of what the migrations wrote to synced rows */
    int baseline;         /* > 0: recorded at this version first (dry: would be) */
    uint64_t baseline_rows; /* rows the database held before stemma, made operations (by a
                               baseline or an older tool's table adopted; dry: the rows a
                               baseline would) */
} stemma_migrate_result;

/* Brings the database at db (created when missing) to opts->to of the schema set in
 * the directory schemas, one transaction a step, with change capture set up; refuses on
 * drift (STEMMA_EINPUT, each problem told as DRIFT first). Going back is not done here
 * (`stemma rollback`). opts NULL: the defaults. *result may be NULL. */
STEMMA_API stemma_code stemma_migrate(const char *db, const char *schemas,
                                      const stemma_migrate_options *opts,
                                      stemma_migrate_result *result, stemma_error *err);

/* ---- a database: changes, vectors, bundles ---- */

typedef struct stemma_db stemma_db;

/* Opens a database stemma has set up (stemma_migrate does that), and makes what the
 * application wrote since stemma last looked into operations. schemas (may be NULL):
 * its schema set's directory, so that operations written at another version of it are
 * translated (renamed columns, rebuilt tables) instead of parked. *out is the caller's
 * (stemma_db_close). STEMMA_EINPUT for a database not set up. */
STEMMA_API stemma_code stemma_db_open(const char *path, const char *schemas, stemma_db **out,
                                      stemma_error *err);
STEMMA_API void stemma_db_close(stemma_db **db);

/* The id of the version the database is at (64 hex digits and a NUL; "" at none). */
STEMMA_API stemma_code stemma_db_version_id(stemma_db *db, char id[65], stemma_error *err);

/* Writes the database's version vector to path (what it holds, per origin), for the
 * other side's stemma_db_write_changes (or `stemma changes --since`). */
STEMMA_API stemma_code stemma_db_write_vector(stemma_db *db, const char *path,
                                              stemma_error *err);

/* What a bundle held. A plain value. */
typedef struct {
    uint64_t ops;      /* operations in it */
    uint64_t bytes;    /* the file's size */
    uint64_t withheld; /* written: row changes too large for a bundle, sent as stand-ins */
} stemma_bundle_info;

/* Writes to bundle_path the operations the other side lacks: those above the vector
 * file at since_path (NULL: every operation). *info may be NULL. */
STEMMA_API stemma_code stemma_db_write_changes(stemma_db *db, const char *since_path,
                                               const char *bundle_path,
                                               stemma_bundle_info *info, stemma_error *err);

/* What applying did. A plain value. */
typedef struct {
    uint64_t applied;      /* new operations applied (whether they won or not) */
    uint64_t present;      /* already held: nothing done */
    uint64_t parked;       /* new operations held back (a column this version lacks, a
                              constraint, a clock too far ahead): never dropped */
    uint64_t replayed;     /* parked operations that applied now */
    uint64_t parked_total; /* operations parked in the database after */
} stemma_apply_stats;

/* Applies the bundle at path in one transaction (all of it, or on any failure none),
 * last writer wins per cell. *stats may be NULL. */
STEMMA_API stemma_code stemma_db_apply(stemma_db *db, const char *path, stemma_apply_stats *stats,
                                       stemma_error *err);

/* ---- a node inside the application ---- */

typedef struct stemma_node stemma_node;

typedef enum { STEMMA_LOG_INFO = 0, STEMMA_LOG_WARN = 1, STEMMA_LOG_ERROR = 2 } stemma_log_level;

/* One log line of the node: event is a short word ("peer-connected"), peer a peer's
 * short id or NULL, message the line; all lent for the call. */
typedef void (*stemma_log_fn)(void *user, stemma_log_level level, const char *event,
                              const char *peer, const char *message);

typedef enum {
    STEMMA_EVENT_PEER_JUDGED = 1, /* a peer's HELLO was judged: peer_*, relation, sync */
    STEMMA_EVENT_APPLIED,         /* operations were stored (from peers, or parked ones that
                                     apply now): the counts, and the totals after */
    STEMMA_EVENT_MIGRATED,        /* the database is at another version: version */
} stemma_event_kind;

typedef enum {
    STEMMA_SYNC_FULL = 0,    /* everything syncs */
    STEMMA_SYNC_PARTIAL = 1, /* shared columns only (a divergent peer, by default) */
    STEMMA_SYNC_REFUSED = 2, /* nothing syncs; reason says why */
} stemma_sync;

/* One event; every pointer lent for the call. */
typedef struct {
    stemma_event_kind kind;
    const char *peer_key;      /* PEER_JUDGED: its public key, 40 characters of Z85 */
    const char *peer_name;     /* PEER_JUDGED: the device name it gave, or NULL */
    const char *peer_endpoint; /* PEER_JUDGED: where it is dialled, "" when nowhere */
    stemma_relation relation;  /* PEER_JUDGED: how its history relates to this one */
    int peer_version;          /* PEER_JUDGED: the version its database is at */
    stemma_sync sync;          /* PEER_JUDGED: what syncs with it */
    const char *reason;        /* PEER_JUDGED: in words */
    uint64_t applied;          /* APPLIED: new operations applied */
    uint64_t present;          /* APPLIED: already held */
    uint64_t parked;           /* APPLIED: new operations parked */
    uint64_t replayed;         /* APPLIED: parked operations that applied */
    uint64_t parked_total;     /* APPLIED: operations parked now */
    uint64_t conflicts_total;  /* APPLIED: rows kept aside under a key taken twice */
    int version;               /* MIGRATED: the database's version now */
} stemma_event;

typedef void (*stemma_event_fn)(void *user, const stemma_event *ev);

/* Whom a node tells, and how much. Start from STEMMA_NODE_OPTIONS_INIT. */
typedef struct {
    stemma_log_fn on_log;      /* NULL: log lines go to stderr, as `stemma node` writes */
    stemma_event_fn on_event;  /* NULL: no one is told */
    void *user;                /* the callbacks' first argument */
    stemma_log_level log_level; /* lines below it are not logged, nor those below
                                   node.toml's [node] log_level */
} stemma_node_options;

#define STEMMA_NODE_OPTIONS_INIT {NULL, NULL, NULL, STEMMA_LOG_INFO}

/* Opens the node set up in dir by `stemma init` (node.toml, its key pair, known_peers),
 * its database and sockets, as `stemma node --dir` does; it does not run yet. Callbacks
 * are called on the thread that runs the node: the caller's, in stemma_node_step, or
 * the node's own after stemma_node_start; they must not call functions of this node.
 * opts NULL: the defaults. *out is the caller's (stemma_node_close). STEMMA_ESYS with
 * "already running (pid N)" when another node runs in dir. */
STEMMA_API stemma_code stemma_node_open(const char *dir, const stemma_node_options *opts,
                                        stemma_node **out, stemma_error *err);

/* Says goodbye to its peers (when it ran), stops its thread if it has one, closes
 * everything. */
STEMMA_API void stemma_node_close(stemma_node **node);

/* Running it in the application's own loop: wait until the descriptor *fd is readable,
 * or timeout_ms passes (-1: no timeout), then call stemma_node_step; repeat. */

/* A descriptor to poll for reading (lent: the node's, valid until it closes). */
STEMMA_API stemma_code stemma_node_fd(stemma_node *node, int *fd, stemma_error *err);
/* Does what is due: reads what peers sent, stores it, sends what they lack, runs its
 * timers. Never waits. *timeout_ms: how long the caller may wait on the descriptor
 * before the next step (0: step again at once; -1: until it is readable). STEMMA_EUSAGE
 * while the node runs on its own thread. */
STEMMA_API stemma_code stemma_node_step(stemma_node *node, int *timeout_ms, stemma_error *err);

/* Running it on a thread of its own: the node's loop runs there until stemma_node_stop
 * (or close). While it runs, only stemma_node_request, stemma_node_reload,
 * stemma_node_stop, stemma_node_close and the getters below may be called, from any
 * one thread; the callbacks are called on the node's thread. */
STEMMA_API stemma_code stemma_node_start(stemma_node *node, stemma_error *err);
/* Stops the thread (the node says goodbye to its peers) and waits for it; the node can
 * then be stepped, or started again. */
STEMMA_API stemma_code stemma_node_stop(stemma_node *node, stemma_error *err);

/* Asks the node what `stemma report`, `peers`, `stats`, `trust` and `peer` ask over its
 * control socket (docs/protocol.md, "Control socket"): "report json", "report text",
 * "peers", "stats", "trust add KEY", "peer add KEY@ENDPOINT", ... *reply is the
 * caller's (stemma_free). */
STEMMA_API stemma_code stemma_node_request(stemma_node *node, const char *request, char **reply,
                                           stemma_error *err);
/* Reads node.toml and known_peers again and applies what changed in trust and peers
 * (what SIGHUP does to `stemma node`); other changed settings are logged as needing a
 * restart. */
STEMMA_API stemma_code stemma_node_reload(stemma_node *node, stemma_error *err);

/* The mesh endpoint the node is bound to (its port resolved), lent. */
STEMMA_API const char *stemma_node_endpoint(const stemma_node *node);
/* The node's public key (its id), 40 characters of Z85, lent. */
STEMMA_API const char *stemma_node_key(const stemma_node *node);

#ifdef __cplusplus
}
#endif

#endif
