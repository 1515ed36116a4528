/* config.h - a node's settings: NODE_DIR/node.toml, and the keys it learned on first
 * use, NODE_DIR/known_peers.
 *
 * node.toml is the user's file: `stemma init` writes it with every setting and a
 * comment above each, and the node only reads it. Its sections:
 *
 *   [node]      db, schemas (paths; relative ones are relative to NODE_DIR),
 *               bind (the mesh endpoint), control (the control socket)
 *   [peers]     addresses = ["KEY@ENDPOINT", ...]
 *   [security]  insecure, trust_on_first_use, trusted = ["KEY", ...]
 *   [policy]    same, ancestor, descendant, divergent, unrelated ("full", "shared" or
 *               "none"), min_supported_version, max_version_gap
 *   [timing]    heartbeat_ms, peer_timeout_ms, reconnect_min_ms, reconnect_max_ms
 *   [sync]      batch_ops, window, local_poll_ms, busy_timeout_ms
 *
 * Reading is strict about what it knows and lenient about what it does not: a key or
 * section it does not know is ignored (a later version may add some), a missing one
 * takes its default, and anything else wrong is one message
 * "NODE_DIR/node.toml:LINE:COL: section.key: what is wrong".
 *
 * An endpoint is tcp://HOST:PORT (HOST a name, an IPv4 address or a [bracketed] IPv6
 * one; `*` too for bind; PORT 1-65535) or ipc://PATH (at most CONFIG_MAX_IPC_PATH
 * bytes, the limit of a Unix socket's name). A key is Z85 or hex (keys.h) and is
 * always written back in Z85.
 *
 * known_peers holds the keys the node trusted on first use, one Z85 key per line;
 * lines starting with '#' that are not keys are comments. The node appends to it; it
 * never writes node.toml. */
#ifndef STM_CONFIG_H
#define STM_CONFIG_H

#include "keys.h"
#include "base/error.h"
#include "lineage/relation.h"

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_FILE "node.toml"
#define CONFIG_KNOWN_PEERS_FILE "known_peers"

#define CONFIG_DEFAULT_BIND "tcp://127.0.0.1:7420"
#define CONFIG_CONTROL_SOCKET "control.sock" /* the default control is ipc://ABS_DIR/this */

/* Limits, checked when node.toml or known_peers is read. */
#define CONFIG_MAX_IPC_PATH 107                 /* bytes of an ipc:// path (sun_path) */
#define CONFIG_MAX_PEERS 10000                  /* entries in peers.addresses */
#define CONFIG_MAX_TRUSTED 100000               /* entries in security.trusted, known_peers */
#define CONFIG_MAX_KNOWN_PEERS_BYTES (8u << 20) /* the size of known_peers */
#define CONFIG_MAX_MS 86400000                  /* any *_ms setting: one day */
#define CONFIG_MAX_WINDOW 256                   /* sync.window */

/* What syncs with a peer of one relation (relation.h). */
typedef enum {
    CONFIG_SYNC_FULL,   /* every table and column both have */
    CONFIG_SYNC_SHARED, /* only the columns both have with the same type (and their tables) */
    CONFIG_SYNC_NONE,   /* nothing: the peer is reported, not synced */
} config_sync;

/* One entry of peers.addresses. */
typedef struct {
    char *endpoint; /* tcp://HOST:PORT or ipc://PATH, owned */
    bool has_key;   /* false only when the node is insecure */
    stm_id key;     /* the peer's public key, when has_key */
} config_peer;

/* A node's settings. A plain struct: start with config_init, end with config_destroy;
 * every pointer in it is owned by it. Fill or change fields directly (config_set_str
 * and config_add_* keep ownership straight); config_save checks nothing, so set only
 * values config_load would accept. */
typedef struct {
    char *dir; /* NODE_DIR as given */

    /* [node] */
    char *db;      /* the application's database, as written (see config_resolve) */
    char *schemas; /* the schema set's directory, as written */
    char *bind;    /* the mesh endpoint, default CONFIG_DEFAULT_BIND */
    char *control; /* the control endpoint, default ipc://ABS_NODE_DIR/control.sock */

    /* [peers] */
    config_peer *peers; /* addresses, in the order written */
    size_t npeers;

    /* [security] */
    bool insecure;           /* plain TCP, no CURVE (default false) */
    bool trust_on_first_use; /* accept an unknown key and remember it (default false) */
    stm_id *trusted;         /* keys a peer may present (peers' keys included) */
    size_t ntrusted;

    /* [policy] */
    config_sync policy[RELATION_UNRELATED + 1]; /* indexed by relation_kind */
    int min_supported_version;                  /* older peers are refused; 0: none */
    int max_version_gap;                        /* a wider gap is reported; 0: no limit */

    /* [timing] */
    int heartbeat_ms;     /* how often a quiet peer is pinged (1000) */
    int peer_timeout_ms;  /* silence after which a peer is dropped (5000) */
    int reconnect_min_ms; /* first delay before reconnecting (100) */
    int reconnect_max_ms; /* the longest delay, doubling from the first (5000) */

    /* [sync] */
    int batch_ops;       /* operations per batch sent (2000) */
    int window;          /* batches in flight per peer (4) */
    int local_poll_ms;   /* how often to look for local writes (200) */
    int busy_timeout_ms; /* how long one attempt to store waits for the database's lock (1000) */
} node_config;

/* Fills cfg with the defaults for a node in dir (copied); db and schemas are NULL
 * until set. The control default uses dir made absolute (from the current directory,
 * without resolving links). */
void config_init(node_config *cfg, const char *dir);
/* Frees everything cfg owns and leaves it zeroed; safe twice. */
void config_destroy(node_config *cfg);

/* Replaces the string *field (a char * member of cfg) with a copy of value. */
void config_set_str(char **field, const char *value);
/* Adds a trusted key, unless it is already there. */
void config_add_trusted(node_config *cfg, const stm_id *key);
/* Adds a peer (endpoint copied). */
void config_add_peer(node_config *cfg, const config_peer *peer);

/* The path a setting names, resolved: an absolute path as it is, a relative one
 * joined to cfg->dir. The caller frees it. */
char *config_resolve(const node_config *cfg, const char *path);
/* path made absolute against the current directory, without resolving links or
 * needing it to exist (leading "./" dropped); the caller frees it. */
char *config_absolute(const char *path);
/* The path of dir/name, the caller's to free. */
char *config_path(const char *dir, const char *name);

/* "full", "shared", "none": static. */
const char *config_sync_name(config_sync s);
/* Parses one of those words; false when it is none of them. */
bool config_sync_parse(const char *word, config_sync *out);

/* Checks an endpoint (see above); bind allows `*` as the host. STM_EINPUT with a
 * message saying what is wrong (without naming the setting: callers add that). */
stm_err config_check_endpoint(const char *endpoint, bool bind, stm_error *err);
/* Parses "KEY@ENDPOINT", or "ENDPOINT" alone when insecure, into out (out->endpoint
 * the caller's to free, via config_peer_free or config_destroy once added). STM_EINPUT
 * saying what is wrong. */
stm_err config_parse_peer(const char *text, bool insecure, config_peer *out, stm_error *err);
/* Frees what peer owns. */
void config_peer_free(config_peer *peer);
/* "KEY@ENDPOINT" (KEY in Z85) or "ENDPOINT", as node.toml holds it; the caller's. */
char *config_peer_format(const config_peer *peer);

/* Reads dir/node.toml into *cfg (which it config_inits; config_destroy it even on
 * failure). STM_EINPUT with "DIR/node.toml:LINE:COL: key: what is wrong" for anything
 * wrong in the file, or "DIR/node.toml: no such file" (with a hint to run stemma
 * init); STM_ESYS when it cannot be read. */
stm_err config_load(const char *dir, node_config *cfg, stm_error *err);
/* Writes cfg as cfg->dir/node.toml: every setting, each with a comment saying what it
 * does and its default, as TOML 1.0, written whole beside it, fsynced and renamed into
 * place (mode 0644). STM_ESYS naming the file when it cannot be written. */
stm_err config_save(const node_config *cfg, stm_error *err);

/* Reads dir/known_peers into *keys (the caller's to free) and *count; a missing file is
 * an empty list. STM_EINPUT "DIR/known_peers:LINE: ..." for a line that is neither a
 * key nor a comment, or a file over the limits; STM_ESYS when it cannot be read. */
stm_err config_known_peers_load(const char *dir, stm_id **keys, size_t *count, stm_error *err);
/* Appends key (in Z85) as a line of dir/known_peers, creating it with a comment saying
 * what it is, and fsyncs it. Does not look for the key first: the caller knows. */
stm_err config_known_peer_add(const char *dir, const stm_id *key, stm_error *err);

#endif
