/* config.h - a node's settings: NODE_DIR/node.toml.
 *
 * node.toml is the user's file: `stemma init` writes it with every setting and a
 * comment above each, and the node only reads it (but for `stemma peer`). Every
 * setting is one row of one table, at the top of config.c: section, key, type,
 * default, bounds and a one-line doc. The table is the only place a setting's name,
 * default or bounds is written, and it drives everything done with the file:
 *
 *   stm_config_init          the defaults
 *   stm_config_load          reading: types, bounds, unknown names, settings that must agree
 *   stm_config_save          the commented file `stemma init` writes
 *   stm_config_doc_markdown  the settings tables of docs/user-guide.md (test_node_config
 *                        fails when the guide says otherwise)
 *
 * A new setting is a row in the table and a field in node_config.
 *
 * Reading is strict: a key or section it does not know is refused, naming its line and
 * the nearest known name ("DIR/node.toml:7: unknown section [securty]; did you mean
 * [security]?"), since a misspelt setting would otherwise run on its default without a
 * word. A missing setting takes its default; anything else wrong is one message
 * "DIR/node.toml:LINE:COL: section.key: what is wrong".
 *
 * Endpoints are checked by endpoint.h. A key is Z85 or hex (keys.h) and is always
 * written back in Z85. The node writes node.toml only for `stemma peer` (peerlist.h,
 * by stm_config_save); the keys it learns go in known_peers (known_peers.h). */
#ifndef STM_CONFIG_H
#define STM_CONFIG_H

#include "keys.h"
#include "peer.h"
#include "base/error.h"
#include "base/log.h"
#include "base/id.h"

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_FILE "node.toml"

/* Named here because `stemma init --help` quotes them too; the table uses them. */
#define CONFIG_DEFAULT_BIND "tcp://127.0.0.1:7420"
#define CONFIG_MAX_NAME 64 /* bytes of [node] name */
#define CONFIG_CONTROL_SOCKET "control.sock" /* the default control is ipc://ABS_DIR/this */

/* Limits, checked when node.toml (or, for CONFIG_MAX_TRUSTED, known_peers) is read. */
#define CONFIG_MAX_PEERS 10000    /* entries in peers.addresses */
#define CONFIG_MAX_TRUSTED 100000 /* entries in security.trusted, known_peers */
#define CONFIG_MAX_MS 86400000    /* any *_ms setting: one day */
#define CONFIG_MAX_WINDOW 256     /* sync.window */
#define CONFIG_MIN_BEACON_MS 100  /* discovery.interval_ms: a LAN is not flooded */

/* One entry of peers.addresses. */
typedef struct {
    char *endpoint; /* tcp://HOST:PORT or ipc://PATH, owned */
    bool has_key;   /* false only when the node is insecure */
    stm_id key;     /* the peer's public key (its node id), when has_key */
} config_peer;

/* A node's settings. A plain struct: start with stm_config_init, end with stm_config_destroy;
 * every pointer in it is owned by it. Fill or change fields directly (stm_config_set_str
 * and config_add_* keep ownership straight); stm_config_save checks nothing, so set only
 * values stm_config_load would accept. What each setting means, its default and its bounds
 * are in the table in config.c, and nowhere else. */
typedef struct {
    char *dir; /* NODE_DIR as given */

    /* [node] */
    char *db;        /* the application's database, as written (see stm_config_resolve) */
    char *schemas;   /* the schema set's directory, as written */
    char *layout;    /* how it names its migrations: a name of lineage/layout.h, or "auto" */
    log_level log_level; /* the least important lines logged (live: read again on SIGHUP) */
    char *bind;      /* the mesh endpoint */
    char *advertise; /* the endpoint peers are told; "": the bind endpoint unless a wildcard */
    char *control;   /* the control endpoint */
    char *name;      /* the device's name for people; "": the machine's host name */

    /* [peers] */
    config_peer *peers; /* addresses, in the order written */
    size_t npeers;

    /* [security] */
    bool insecure;           /* plain TCP, no CURVE */
    bool trust_on_first_use; /* accept an unknown key and remember it */
    stm_id *trusted;         /* keys a peer may present (peers' keys included) */
    size_t ntrusted;

    /* [policy]: what syncs per relation, and the version limits; peer.h judges by it */
    peer_policy policy;

    /* [mesh]: which learned peers are kept (node/mesh.h) */
    int max_learned_peers; /* the most learned peers dialled */

    /* [timing] */
    int heartbeat_ms;     /* how often a quiet peer is pinged */
    int peer_timeout_ms;  /* silence after which a peer is taken as gone */
    int reconnect_min_ms; /* first delay before reconnecting */
    int reconnect_max_ms; /* the longest delay, doubling from the first */

    /* [sync] */
    int batch_ops;       /* operations per batch sent */
    bool vector_deltas;  /* list vdelta.v1: vectors as deltas to peers that take them */
    int window;          /* batches in flight per peer */
    int local_poll_ms;   /* how often to look for local writes */
    int busy_timeout_ms; /* how long one attempt to store waits for the database's lock */
    int max_clock_ahead_ms; /* how far ahead of ours an operation's clock may be */

    /* [compaction]: pruning what later writes replaced (node/compactor.h) */
    bool compact;             /* the node compacts its oplog */
    int compact_interval_ms;  /* how often a pass starts */
    int known_peer_hours;     /* how long a silent peer still holds pruning back */

    /* [discovery]: UDP beacons on the LAN (node/beacon.h) */
    bool discovery;            /* send and hear beacons */
    int discovery_port;        /* the UDP port beacons go to and are heard on */
    int discovery_interval_ms; /* how often a beacon is sent */
    char *discovery_broadcast; /* the IPv4 address beacons are sent to */
} node_config;

/* Fills cfg with the table's defaults for a node in dir (copied); db and schemas, which
 * have none, are NULL until set. The control default uses dir made absolute (from the
 * current directory, without resolving links). */
void stm_config_init(node_config *cfg, const char *dir);
/* Frees everything cfg owns and leaves it zeroed; safe twice. */
void stm_config_destroy(node_config *cfg);
/* Fills *p with the table's defaults for [policy], for a judge without a node.toml. */
void stm_config_policy_default(peer_policy *p);

/* Replaces the string *field (a char * member of cfg) with a copy of value. */
void stm_config_set_str(char **field, const char *value);
/* Adds a trusted key (copied), unless it is already there. */
void stm_config_add_trusted(node_config *cfg, const stm_id *key);
/* Adds a peer (endpoint copied). */
void stm_config_add_peer(node_config *cfg, const config_peer *peer);

/* The path a setting names, resolved: an absolute path as it is, a relative one
 * joined to cfg->dir. The caller frees it. */
char *stm_config_resolve(const node_config *cfg, const char *path);
/* path made absolute against the current directory, without resolving links or
 * needing it to exist (leading "./" dropped); the caller frees it. */
char *stm_config_absolute(const char *path);
/* The path of dir/name, the caller's to free. */
char *stm_config_path(const char *dir, const char *name);

/* Parses "KEY@ENDPOINT", or "ENDPOINT" alone when insecure, into out (out->endpoint
 * the caller's to free, via stm_config_peer_free or stm_config_destroy once added). STM_EINPUT
 * saying what is wrong. */
STM_NODISCARD stm_err stm_config_parse_peer(const char *text, bool insecure, config_peer *out,
                                            stm_error *err);
/* Frees what peer owns. */
void stm_config_peer_free(config_peer *peer);
/* "KEY@ENDPOINT" (KEY in Z85) or "ENDPOINT", as node.toml holds it; the caller's. */
char *stm_config_peer_format(const config_peer *peer);

/* Reads dir/node.toml into *cfg (which it config_inits; stm_config_destroy it even on
 * failure). STM_EINPUT with "DIR/node.toml:LINE:COL: key: what is wrong" for a bad
 * value, "DIR/node.toml:LINE: unknown ...; did you mean ...?" for a name the table
 * does not have, or "DIR/node.toml: no such file" (with a hint to run stemma init);
 * STM_ESYS when it cannot be read. */
STM_NODISCARD stm_err stm_config_load(const char *dir, node_config *cfg, stm_error *err);
/* Writes cfg as cfg->dir/node.toml: every setting of the table, in its order, each
 * with its doc, bounds and default as a comment above it, as TOML 1.0, written whole
 * beside it, fsynced and renamed into place (mode 0644). STM_ESYS naming the file when
 * it cannot be written. */
STM_NODISCARD stm_err stm_config_save(const node_config *cfg, stm_error *err);
/* Every setting but the lists (peers.addresses, security.trusted), one a line, as
 * "section.key = VALUE" in the table's order: two configurations' texts differ on the
 * lines of the settings that differ (SIGHUP names those that need a restart). The
 * caller frees it. */
char *stm_config_values_text(const node_config *cfg);
/* The settings as docs/user-guide.md shows them: for each section a line saying what
 * it holds and a Markdown table of its settings (type and bounds, default, doc). The
 * caller frees it. */
char *stm_config_doc_markdown(void);
/* The same settings as roff, one .SS a section and one .TP a setting, for the body of
 * stemma-node.toml(5) (man/genman.c); the caller frees it. */
char *stm_config_doc_man(void);

#endif
