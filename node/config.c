/* config.c - node.toml and known_peers (config.h).
 *
 * The table of settings comes first: it is the one place a setting's section, key,
 * type, default, bounds and doc are written. Everything after it works from the table:
 * config_init takes the defaults from it; config_load first walks the file's names
 * against it (a name it does not have is refused, with the nearest one it does), then
 * reads each row (its type, then its value), then the pairs of settings that must
 * agree, and reports the first problem found at the line and column of the value at
 * fault; config_save writes each row under a comment made from its doc, bounds and
 * default; config_doc_markdown writes the user guide's tables from the same words.
 * Writing builds the file line by line, so each setting can have its comment above
 * it, and lets toml/'s emitter write every value, so strings are escaped as TOML
 * wants. */
#include "config.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/safefile.h"
#include "lineage/schemaset.h"
#include "sync/codec.h"
#include "toml/toml.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the table */

/* What a setting holds: its TOML type, its C type, and how it is checked. */
typedef enum {
    S_PATH,     /* char *: a file or directory; a relative path is relative to NODE_DIR */
    S_ENDPOINT, /* char *: an endpoint the node binds (config_check_endpoint, `*` allowed) */
    S_BOOL,     /* bool */
    S_INT,      /* int, from min to max */
    S_POLICY,   /* policy_mode (peer.h), written as one of s_policy_words */
    S_PEERS,    /* config_peer * and a size_t length: "KEY@ENDPOINT"s, at most max */
    S_KEYS,     /* stm_id * and a size_t length: public keys, at most max, each kept once */
} s_type;

/* One setting: one row of the table. */
typedef struct {
    const char *section; /* its [section] */
    const char *key;     /* its name in the section */
    s_type type;
    size_t field;        /* offsetof its value in node_config */
    size_t size;         /* sizeof that value, checked against what type says */
    size_t count;        /* S_PEERS, S_KEYS: offsetof the list's length */
    const char *text;    /* the default of a string, "NODE_DIR" in it standing for the
                            node's directory made absolute; NULL: required, no default */
    int64_t value;       /* the default of a bool, an integer or a policy */
    int64_t min, max;    /* S_INT: its bounds; S_PEERS, S_KEYS: max is the most entries */
    const char *doc;     /* what it is, in one line without '|': node.toml's comment and
                            the user guide's row */
} s_setting;

#define S_ROW(sec, k, t, f)                                                                        \
    .section = sec, .key = k, .type = t, .field = offsetof(node_config, f),                        \
    .size = sizeof(((node_config *)0)->f)
#define S_LENGTH(f) .count = offsetof(node_config, f)

/* The sections, in the order node.toml and the user guide give them. */
static const struct {
    const char *name;
    const char *doc; /* what the section holds, one line */
} s_sections[] = {
    {"node", "the node's database, its schema set, and where it listens"},
    {"peers", "the nodes this node connects to"},
    {"security", "who may connect: CURVE keys, and trust on first use"},
    {"policy", "what syncs with a peer, by how its schema history relates to this node's "
               "(stemma compare): \"full\" syncs every table and column both have, \"shared\" "
               "only the columns both have with the same type, \"none\" nothing (the peer is "
               "still reported)"},
    {"timing", "heartbeats, liveness and reconnecting"},
    {"sync", "sending operations to peers and storing theirs"},
};
#define S_NSECTIONS (sizeof s_sections / sizeof s_sections[0])

/* The words of S_POLICY, indexed by policy_mode. */
static const char *const s_policy_words[] = {
    [POLICY_FULL] = "full", [POLICY_SHARED] = "shared", [POLICY_NONE] = "none"};
#define S_NPOLICY_WORDS (sizeof s_policy_words / sizeof s_policy_words[0])

/* Every setting of node.toml, grouped by section in s_sections' order. */
static const s_setting s_settings[] = {
    {S_ROW("node", "db", S_PATH, db),
     .doc = "the application's SQLite database; a relative path is relative to the node's "
            "directory"},
    {S_ROW("node", "schemas", S_PATH, schemas),
     .doc = "the schema set: the directory of numbered migrations (NNN_description.sql); a "
            "relative path is relative to the node's directory"},
    {S_ROW("node", "bind", S_ENDPOINT, bind), .text = CONFIG_DEFAULT_BIND,
     .doc = "where the node listens for peers: HOST * is every interface, the default this "
            "machine only"},
    {S_ROW("node", "control", S_ENDPOINT, control), .text = "ipc://NODE_DIR/" CONFIG_CONTROL_SOCKET,
     .doc = "where the node answers queries about itself (its peers, what syncs, what is "
            "parked); NODE_DIR is the node's directory, absolute"},

    {S_ROW("peers", "addresses", S_PEERS, peers), S_LENGTH(npeers), .max = CONFIG_MAX_PEERS,
     .doc = "the peers this node connects to, each \"KEY@ENDPOINT\": KEY the peer's public "
            "key (its stemma init prints it), which may be left out only when "
            "security.insecure is true. Peers not listed may still connect to this node"},

    {S_ROW("security", "insecure", S_BOOL, insecure), .value = false,
     .doc = "true: plain TCP, without CURVE encryption and authentication, and any peer is "
            "accepted; for a closed test network only"},
    {S_ROW("security", "trust_on_first_use", S_BOOL, trust_on_first_use), .value = false,
     .doc = "true: a peer presenting a key that is not trusted is accepted, and its key is "
            "added to known_peers in the node's directory (trusted from then on)"},
    {S_ROW("security", "trusted", S_KEYS, trusted), S_LENGTH(ntrusted),
     .max = CONFIG_MAX_TRUSTED,
     .doc = "the public keys (Z85 or hex) a peer may present; stemma init adds the keys of "
            "the peers it was given"},

    {S_ROW("policy", "same", S_POLICY, policy.mode[RELATION_SAME]), .value = POLICY_FULL,
     .doc = "the peer's history is this node's"},
    {S_ROW("policy", "ancestor", S_POLICY, policy.mode[RELATION_ANCESTOR]),
     .value = POLICY_FULL, .doc = "the peer's history goes on from this node's (it is newer)"},
    {S_ROW("policy", "descendant", S_POLICY, policy.mode[RELATION_DESCENDANT]),
     .value = POLICY_FULL,
     .doc = "this node's history goes on from the peer's (this node is newer)"},
    {S_ROW("policy", "divergent", S_POLICY, policy.mode[RELATION_DIVERGENT]),
     .value = POLICY_SHARED, .doc = "the histories parted after a common version"},
    {S_ROW("policy", "unrelated", S_POLICY, policy.mode[RELATION_UNRELATED]),
     .value = POLICY_NONE,
     .doc = "the histories have no version in common (another application)"},
    {S_ROW("policy", "min_supported_version", S_INT, policy.min_supported_version), .value = 0,
     .min = 0, .max = SCHEMASET_MAX_VERSIONS,
     .doc = "a peer whose schema version is below this is refused, with the reason in the "
            "node's report; 0: no minimum"},
    {S_ROW("policy", "max_version_gap", S_INT, policy.max_version_gap), .value = 0, .min = 0,
     .max = SCHEMASET_MAX_VERSIONS,
     .doc = "a peer more versions away than this is reported with a recommendation to "
            "resync; 0: no limit"},

    {S_ROW("timing", "heartbeat_ms", S_INT, heartbeat_ms), .value = 1000, .min = 1,
     .max = CONFIG_MAX_MS, .doc = "how often, in milliseconds, a quiet peer is sent a heartbeat"},
    {S_ROW("timing", "peer_timeout_ms", S_INT, peer_timeout_ms), .value = 5000, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "how long, in milliseconds, a peer may stay silent before it is taken as gone"},
    {S_ROW("timing", "reconnect_min_ms", S_INT, reconnect_min_ms), .value = 100, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "the first wait, in milliseconds, before reconnecting to a lost peer; each failed "
            "attempt doubles it, up to reconnect_max_ms"},
    {S_ROW("timing", "reconnect_max_ms", S_INT, reconnect_max_ms), .value = 5000, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "the longest wait, in milliseconds, between reconnection attempts"},

    {S_ROW("sync", "batch_ops", S_INT, batch_ops), .value = 2000, .min = 1,
     .max = CODEC_MAX_BATCH_OPS, .doc = "operations per batch sent to a peer"},
    {S_ROW("sync", "window", S_INT, window), .value = 4, .min = 1, .max = CONFIG_MAX_WINDOW,
     .doc = "batches in flight to one peer before waiting for it to acknowledge"},
    {S_ROW("sync", "local_poll_ms", S_INT, local_poll_ms), .value = 200, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "how often, in milliseconds, the node looks for writes to its own database"},
    {S_ROW("sync", "busy_timeout_ms", S_INT, busy_timeout_ms), .value = 1000, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "how long, in milliseconds, one attempt to store received operations waits while "
            "another program holds the database's write lock; then the node answers its "
            "peers and control socket and tries again, losing nothing (docs/user-guide.md, "
            "\"When the database cannot take operations\")"},
};
#define S_NSETTINGS (sizeof s_settings / sizeof s_settings[0])

/* Pairs of integer settings that must agree: lower below upper (strict), or not above
 * it. A timeout no longer than the heartbeat would drop every quiet peer. */
static const struct {
    const char *section, *lower, *upper;
    bool strict;
} s_rules[] = {
    {"timing", "heartbeat_ms", "peer_timeout_ms", true},
    {"timing", "reconnect_min_ms", "reconnect_max_ms", false},
};

/* The row of section.key (key len bytes: a key from a file may hold NULs), or NULL. */
static const s_setting *s_find(const char *section, const char *key, size_t len)
{
    for (size_t i = 0; i < S_NSETTINGS; i++)
        if (strcmp(s_settings[i].section, section) == 0 && strlen(s_settings[i].key) == len &&
            memcmp(s_settings[i].key, key, len) == 0)
            return &s_settings[i];
    return NULL;
}

static bool s_is_section(const char *name, size_t len)
{
    for (size_t i = 0; i < S_NSECTIONS; i++)
        if (strlen(s_sections[i].name) == len && memcmp(s_sections[i].name, name, len) == 0)
            return true;
    return false;
}

/* The value of row s in cfg, whose C type is size bytes: the row's size says it is the
 * type the caller takes it for. Lent; const only in that config_save does not write. */
static void *s_field(const node_config *cfg, const s_setting *s, size_t size)
{
    assert(s->size == size);
    (void)size;
    return (char *)cfg + s->field;
}

static size_t *s_length(const node_config *cfg, const s_setting *s)
{
    return (size_t *)((char *)cfg + s->count);
}

/* s->text with NODE_DIR replaced by abs_dir (no trailing '/', unless it is "/"). */
static char *s_expand(const char *text, const char *abs_dir)
{
    const char *at = strstr(text, "NODE_DIR");
    if (!at)
        return stm_strdup(text);
    const char *rest = at + strlen("NODE_DIR");
    if (strcmp(abs_dir, "/") == 0 && rest[0] == '/')
        rest++;
    buf_t b = BUF_INIT;
    buf_printf(&b, "%.*s%s%s", (int)(at - text), text, abs_dir, rest);
    return buf_detach(&b);
}

/* Sets row s of cfg to its default; abs_dir is for NODE_DIR in a string's. */
static void s_set_default(node_config *cfg, const s_setting *s, const char *abs_dir)
{
    switch (s->type) {
    case S_PATH:
    case S_ENDPOINT: {
        char **str = s_field(cfg, s, sizeof(char *));
        free(*str);
        *str = s->text ? s_expand(s->text, abs_dir) : NULL;
        break;
    }
    case S_BOOL:
        *(bool *)s_field(cfg, s, sizeof(bool)) = s->value != 0;
        break;
    case S_INT:
        *(int *)s_field(cfg, s, sizeof(int)) = (int)s->value;
        break;
    case S_POLICY:
        *(policy_mode *)s_field(cfg, s, sizeof(policy_mode)) = (policy_mode)s->value;
        break;
    case S_PEERS:
    case S_KEYS:
        break; /* empty lists: config_init zeroed them */
    }
}

/* ------------------------------------------------------------------ the struct */

char *config_absolute(const char *path)
{
    if (path[0] == '/')
        return stm_strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return stm_strdup(path); /* no better answer; the path still works from here */
    while (path[0] == '.' && path[1] == '/') {
        path += 2;
        while (*path == '/')
            path++;
    }
    buf_t b = BUF_INIT;
    if (path[0] == '\0' || strcmp(path, ".") == 0)
        buf_puts(&b, cwd);
    else
        buf_printf(&b, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
    return buf_detach(&b);
}

void config_init(node_config *cfg, const char *dir)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dir = stm_strdup(dir);
    char *abs = config_absolute(dir);
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/')
        abs[--n] = '\0';
    for (size_t i = 0; i < S_NSETTINGS; i++)
        s_set_default(cfg, &s_settings[i], abs);
    free(abs);
}

void config_policy_default(peer_policy *p)
{
    node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    size_t from = offsetof(node_config, policy), to = from + sizeof cfg.policy;
    for (size_t i = 0; i < S_NSETTINGS; i++)
        if (s_settings[i].field >= from && s_settings[i].field < to)
            s_set_default(&cfg, &s_settings[i], NULL);
    *p = cfg.policy;
}

void config_peer_free(config_peer *peer)
{
    free(peer->endpoint);
    peer->endpoint = NULL;
}

void config_destroy(node_config *cfg)
{
    free(cfg->dir);
    for (size_t i = 0; i < S_NSETTINGS; i++) {
        const s_setting *s = &s_settings[i];
        if (s->type == S_PATH || s->type == S_ENDPOINT) {
            free(*(char **)s_field(cfg, s, sizeof(char *)));
        } else if (s->type == S_PEERS) {
            config_peer *peers = *(config_peer **)s_field(cfg, s, sizeof(config_peer *));
            for (size_t j = 0; j < *s_length(cfg, s); j++)
                config_peer_free(&peers[j]);
            free(peers);
        } else if (s->type == S_KEYS) {
            free(*(stm_id **)s_field(cfg, s, sizeof(stm_id *)));
        }
    }
    memset(cfg, 0, sizeof *cfg);
}

void config_set_str(char **field, const char *value)
{
    char *copy = value ? stm_strdup(value) : NULL;
    free(*field);
    *field = copy;
}

void config_add_trusted(node_config *cfg, const stm_id *key)
{
    for (size_t i = 0; i < cfg->ntrusted; i++)
        if (stm_id_equal(&cfg->trusted[i], key))
            return;
    cfg->trusted = stm_realloc(cfg->trusted, (cfg->ntrusted + 1) * sizeof *cfg->trusted);
    cfg->trusted[cfg->ntrusted++] = *key;
}

/* Appends a copy of peer to the list *peers of *n. */
static void s_push_peer(config_peer **peers, size_t *n, const config_peer *peer)
{
    *peers = stm_realloc(*peers, (*n + 1) * sizeof **peers);
    config_peer *p = &(*peers)[(*n)++];
    *p = *peer;
    p->endpoint = stm_strdup(peer->endpoint);
}

void config_add_peer(node_config *cfg, const config_peer *peer)
{
    s_push_peer(&cfg->peers, &cfg->npeers, peer);
}

char *config_path(const char *dir, const char *name)
{
    buf_t b = BUF_INIT;
    size_t n = strlen(dir);
    buf_printf(&b, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name);
    return buf_detach(&b);
}

char *config_resolve(const node_config *cfg, const char *path)
{
    return path[0] == '/' ? stm_strdup(path) : config_path(cfg->dir, path);
}

/* ------------------------------------------------------------------ endpoints and peers */

static bool s_is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

stm_err config_check_endpoint(const char *endpoint, bool bind, stm_error *err)
{
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        size_t n = strlen(endpoint + 6);
        if (n == 0)
            return stm_error_set(err, STM_EINPUT, "'%s' has no path: expected ipc://PATH",
                                 endpoint);
        if (n > CONFIG_MAX_IPC_PATH)
            return stm_error_set(err, STM_EINPUT,
                                 "'%.60s...': the path is %zu bytes, longer than the %d a Unix "
                                 "socket's name may have",
                                 endpoint, n, CONFIG_MAX_IPC_PATH);
        return STM_OK;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return stm_error_set(err, STM_EINPUT, "'%.200s' is not tcp://HOST:PORT or ipc://PATH",
                             endpoint);
    const char *host = endpoint + 6, *colon = strrchr(host, ':');
    if (!colon)
        return stm_error_set(err, STM_EINPUT, "'%.200s' has no port: expected tcp://HOST:PORT",
                             endpoint);
    size_t hlen = (size_t)(colon - host);
    bool host_ok = hlen > 0;
    if (host_ok && host[0] == '[') {
        /* [IPv6]: hex digits, colons, dots (an embedded IPv4) and nothing else. */
        host_ok = hlen > 2 && host[hlen - 1] == ']';
        for (size_t i = 1; host_ok && i < hlen - 1; i++)
            host_ok = strchr("0123456789abcdefABCDEF:.", host[i]) != NULL;
    } else if (host_ok && !(bind && hlen == 1 && host[0] == '*')) {
        for (size_t i = 0; host_ok && i < hlen; i++)
            host_ok = s_is_host_char(host[i]);
    }
    if (!host_ok)
        return stm_error_set(err, STM_EINPUT,
                             "'%.200s': the host must be a name, an IPv4 address or a "
                             "[bracketed] IPv6 address%s",
                             endpoint, bind ? ", or *" : "");
    const char *port = colon + 1;
    size_t plen = strlen(port);
    long value = 0;
    bool port_ok = plen > 0 && plen <= 5 && strspn(port, "0123456789") == plen;
    if (port_ok)
        value = strtol(port, NULL, 10);
    if (!port_ok || value < 1 || value > 65535)
        return stm_error_set(err, STM_EINPUT, "'%.200s': the port must be a number from 1 to 65535",
                             endpoint);
    return STM_OK;
}

stm_err config_parse_peer(const char *text, bool insecure, config_peer *out, stm_error *err)
{
    memset(out, 0, sizeof *out);
    const char *endpoint = text;
    if (strncmp(text, "tcp://", 6) != 0 && strncmp(text, "ipc://", 6) != 0) {
        /* The key's length says where it ends: '@' is one of Z85's characters. */
        size_t len = strlen(text), klen = 0;
        if (len > KEYS_Z85_LEN && text[KEYS_Z85_LEN] == '@')
            klen = KEYS_Z85_LEN;
        else if (len > KEYS_HEX_LEN && text[KEYS_HEX_LEN] == '@')
            klen = KEYS_HEX_LEN;
        if (!klen)
            return stm_error_set(err, STM_EINPUT,
                                 "'%.200s' is not KEY@ENDPOINT (KEY the peer's public key: 40 "
                                 "Z85 characters or 64 hex digits)",
                                 text);
        char key[KEYS_HEX_LEN + 1];
        memcpy(key, text, klen);
        key[klen] = '\0';
        if (!keys_parse(key, &out->key))
            return stm_error_set(err, STM_EINPUT, "'%.200s': the key '%s' is not valid %s", text,
                                 key, klen == KEYS_Z85_LEN ? "Z85" : "hex");
        out->has_key = true;
        endpoint = text + klen + 1;
    } else if (!insecure) {
        return stm_error_set(err, STM_EINPUT,
                             "'%.200s' has no key: write KEY@ENDPOINT, KEY the peer's public "
                             "key; only an insecure node may leave it out",
                             text);
    }
    stm_err rc = config_check_endpoint(endpoint, false, err);
    if (rc != STM_OK)
        return rc;
    out->endpoint = stm_strdup(endpoint);
    return STM_OK;
}

char *config_peer_format(const config_peer *peer)
{
    buf_t b = BUF_INIT;
    if (peer->has_key) {
        char z85[KEYS_Z85_LEN + 1];
        keys_to_z85(&peer->key, z85);
        buf_printf(&b, "%s@", z85);
    }
    buf_puts(&b, peer->endpoint);
    return buf_detach(&b);
}

/* ------------------------------------------------------------------ reading node.toml */

typedef struct {
    const char *path; /* DIR/node.toml, for messages */
    stm_error *err;
} s_reader;

/* "PATH:LINE:COL: name: message", at value v (or without a position when v is NULL). */
static stm_err s_fail(const s_reader *r, const toml_value *v, const char *name, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static stm_err s_fail(const s_reader *r, const toml_value *v, const char *name, const char *fmt,
                      ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (v && toml_line(v) > 0)
        return stm_error_set(r->err, STM_EINPUT, "%s:%d:%d: %s: %s", r->path, toml_line(v),
                             toml_column(v), name, what);
    return stm_error_set(r->err, STM_EINPUT, "%s: %s: %s", r->path, name, what);
}

static const char *s_a(toml_type t)
{
    return t == TOML_ARRAY || t == TOML_INTEGER ? "an" : "a";
}

/* ---- names the table does not have */

/* name (len bytes, from the file) as one line of a message can hold it (buf.h), cut
 * after 60 bytes; a NUL in it ends what is shown. */
static void s_put_shown(buf_t *b, const char *name, size_t len)
{
    char cut[61];
    size_t n = len < 60 ? len : 60;
    memcpy(cut, name, n);
    cut[n] = '\0';
    buf_put_printable(b, cut);
    if (len > 60)
        buf_puts(b, "...");
}

/* The edit distance (case aside) between name (len bytes) and known, or SIZE_MAX for a
 * name far longer than any the table has. */
static size_t s_distance(const char *name, size_t len, const char *known)
{
    size_t kn = strlen(known), row[65];
    if (len > 64 || kn > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= kn; j++)
        row[j] = j;
    for (size_t i = 1; i <= len; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= kn; j++) {
            size_t up = row[j];
            bool same = tolower((unsigned char)name[i - 1]) == tolower((unsigned char)known[j - 1]);
            size_t best = diag + !same;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[kn];
}

/* How far name is from known, or SIZE_MAX when it is too far to be taken for a
 * misspelling of it: at most a third of its letters changed (and two more for short
 * names), or one name the start of the other ("batch" for "batch_ops"). */
static size_t s_nearness(const char *name, size_t len, const char *known)
{
    size_t d = s_distance(name, len, known), kn = strlen(known);
    if (d == SIZE_MAX)
        return d;
    size_t shorter = len < kn ? len : kn, longer = len < kn ? kn : len;
    bool prefix = shorter >= 3;
    for (size_t i = 0; prefix && i < shorter; i++)
        prefix = tolower((unsigned char)name[i]) == tolower((unsigned char)known[i]);
    return 3 * d <= longer + 2 || prefix ? d : SIZE_MAX;
}

/* The section a misspelt [name] most likely meant; NULL when none is near. */
static const char *s_nearest_section(const char *name, size_t len)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < S_NSECTIONS; i++) {
        size_t d = s_nearness(name, len, s_sections[i].name);
        if (d < best_d) {
            best = s_sections[i].name;
            best_d = d;
        }
    }
    return best;
}

/* The setting an unknown key in section (NULL: outside any) most likely meant: the
 * nearest in its own section, else the nearest in any (a setting in the wrong section,
 * or outside all); NULL when none is near. */
static const s_setting *s_nearest_setting(const char *section, const char *name, size_t len)
{
    for (int anywhere = 0; anywhere < 2; anywhere++) {
        const s_setting *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t i = 0; i < S_NSETTINGS; i++) {
            if (!anywhere && (!section || strcmp(s_settings[i].section, section) != 0))
                continue;
            size_t d = s_nearness(name, len, s_settings[i].key);
            if (d < best_d) {
                best = &s_settings[i];
                best_d = d;
            }
        }
        if (best)
            return best;
    }
    return NULL;
}

/* "[node], [peers], ... and [sync]"; or, given a section, its keys "db, ... and control". */
static void s_put_known(buf_t *b, const char *section)
{
    const char *names[S_NSETTINGS + S_NSECTIONS];
    size_t n = 0;
    for (size_t i = 0; !section && i < S_NSECTIONS; i++)
        names[n++] = s_sections[i].name;
    for (size_t i = 0; section && i < S_NSETTINGS; i++)
        if (strcmp(s_settings[i].section, section) == 0)
            names[n++] = s_settings[i].key;
    for (size_t i = 0; i < n; i++)
        buf_printf(b, section ? "%s%s" : "%s[%s]", i == 0 ? "" : i + 1 == n ? " and " : ", ",
                   names[i]);
}

/* The one line for a name the table does not have, v being its value: a table is an
 * unknown section, anything else an unknown key. section is the known section it is
 * in, or NULL at the top of the file. */
static stm_err s_unknown(const s_reader *r, const toml_value *v, const char *section,
                         const char *name, size_t len)
{
    bool table = toml_type_of(v) == TOML_TABLE;
    buf_t b = BUF_INIT;
    buf_puts(&b, r->path);
    if (toml_line(v) > 0)
        buf_printf(&b, ":%d", toml_line(v));
    buf_printf(&b, ": unknown %s %s%s%s", table ? "section" : "key", table ? "[" : "",
               section ? section : "", section ? "." : "");
    s_put_shown(&b, name, len);
    buf_puts(&b, table ? "]" : "");
    const char *near_section = table && !section ? s_nearest_section(name, len) : NULL;
    const s_setting *near = table ? NULL : s_nearest_setting(section, name, len);
    if (near_section) {
        buf_printf(&b, "; did you mean [%s]?", near_section);
    } else if (near) {
        buf_printf(&b, "%s; did you mean %s.%s?", section ? "" : " outside any section",
                   near->section, near->key);
    } else if (section) {
        buf_printf(&b, "; [%s] holds ", section);
        s_put_known(&b, section);
    } else {
        buf_puts(&b, table ? "; the sections are " : "; every setting is in a section: ");
        s_put_known(&b, NULL);
    }
    stm_err rc = stm_error_set(r->err, STM_EINPUT, "%s", buf_str(&b));
    buf_free(&b);
    return rc;
}

/* Every name in the file is one the table has: the sections at the top, the keys in
 * each. A known section that is not a table is refused here too, so that the rows can
 * be read from the tables that are there. */
static stm_err s_check_names(const s_reader *r, const toml_value *root)
{
    for (size_t i = 0; i < toml_table_count(root); i++) {
        const char *name = toml_table_key(root, i);
        size_t len = toml_table_key_len(root, i);
        const toml_value *sec = toml_table_at(root, i);
        if (!s_is_section(name, len))
            return s_unknown(r, sec, NULL, name, len);
        if (toml_type_of(sec) != TOML_TABLE)
            return s_fail(r, sec, name, "expected a table ([%s]), found %s %s", name,
                          s_a(toml_type_of(sec)), toml_type_name(toml_type_of(sec)));
        for (size_t j = 0; j < toml_table_count(sec); j++)
            if (!s_find(name, toml_table_key(sec, j), toml_table_key_len(sec, j)))
                return s_unknown(r, toml_table_at(sec, j), name, toml_table_key(sec, j),
                                 toml_table_key_len(sec, j));
    }
    return STM_OK;
}

/* ---- the rows */

/* Where messages about row s say it is: "section.key". */
static const char *s_name(const s_setting *s, char out[128])
{
    snprintf(out, 128, "%s.%s", s->section, s->key);
    return out;
}

/* The value of row s in the file, or NULL when it is absent (it keeps its default); a
 * value of another TOML type than the row's is refused. */
static stm_err s_value(const s_reader *r, const toml_value *root, const s_setting *s,
                       const toml_value **out)
{
    static const toml_type types[] = {
        [S_PATH] = TOML_STRING,   [S_ENDPOINT] = TOML_STRING, [S_BOOL] = TOML_BOOL,
        [S_INT] = TOML_INTEGER,   [S_POLICY] = TOML_STRING,   [S_PEERS] = TOML_ARRAY,
        [S_KEYS] = TOML_ARRAY,
    };
    const toml_value *sec = toml_table_get(root, s->section);
    const toml_value *v = sec ? toml_table_get(sec, s->key) : NULL;
    toml_type t = types[s->type];
    char name[128];
    *out = NULL;
    if (v && toml_type_of(v) != t)
        return s_fail(r, v, s_name(s, name), "expected %s %s, found %s %s", s_a(t),
                      toml_type_name(t), s_a(toml_type_of(v)), toml_type_name(toml_type_of(v)));
    *out = v;
    return STM_OK;
}

/* A string without NUL characters (which no path or endpoint can hold). */
static stm_err s_string_ok(const s_reader *r, const toml_value *v, const char *name)
{
    size_t len;
    const char *s = toml_string(v, &len);
    if (strlen(s) != len)
        return s_fail(r, v, name, "holds a NUL character");
    if (len == 0)
        return s_fail(r, v, name, "must not be empty");
    return STM_OK;
}

/* An array of at most s->max non-empty strings. */
static stm_err s_list_ok(const s_reader *r, const toml_value *list, const s_setting *s,
                         const char *name)
{
    if (toml_array_count(list) > (size_t)s->max)
        return s_fail(r, list, name, "more than %lld entries", (long long)s->max);
    for (size_t i = 0; i < toml_array_count(list); i++) {
        const toml_value *e = toml_array_at(list, i);
        stm_err rc;
        if (toml_type_of(e) != TOML_STRING)
            return s_fail(r, e, name, "expected an array of strings, found %s %s in it",
                          s_a(toml_type_of(e)), toml_type_name(toml_type_of(e)));
        if ((rc = s_string_ok(r, e, name)) != STM_OK)
            return rc;
    }
    return STM_OK;
}

/* A key and where it came in its list. */
typedef struct {
    stm_id key;
    size_t index;
} s_keyed;

static int s_keyed_cmp(const void *pa, const void *pb)
{
    const s_keyed *a = pa, *b = pb;
    int c = memcmp(a->key.bytes, b->key.bytes, STM_ID_BYTES);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* Adds the n keys to the empty list *list of *count in their order, each once: sorted
 * to find repeats, where adding each with config_add_trusted compared it with all
 * before it (n squared: 26 s for the 100,000 keys a node.toml may list). keys is
 * reordered. */
static void s_add_keys_once(stm_id **list, size_t *count, s_keyed *keys, size_t n)
{
    qsort(keys, n, sizeof *keys, s_keyed_cmp);
    bool *repeat = stm_calloc(n + 1, sizeof *repeat);
    for (size_t i = 1; i < n; i++)
        if (stm_id_equal(&keys[i - 1].key, &keys[i].key))
            repeat[keys[i].index] = true;
    stm_id *in_order = stm_calloc(n + 1, sizeof *in_order);
    for (size_t i = 0; i < n; i++)
        in_order[keys[i].index] = keys[i].key;
    *list = stm_realloc(*list, (*count + n + 1) * sizeof **list);
    for (size_t i = 0; i < n; i++)
        if (!repeat[i])
            (*list)[(*count)++] = in_order[i];
    free(in_order);
    free(repeat);
}

static stm_err s_read_keys(const s_reader *r, const toml_value *list, const s_setting *s,
                           const char *name, node_config *cfg)
{
    size_t n = toml_array_count(list);
    s_keyed *keys = stm_calloc(n + 1, sizeof *keys);
    stm_err rc = STM_OK;
    for (size_t i = 0; rc == STM_OK && i < n; i++) {
        const toml_value *e = toml_array_at(list, i);
        keys[i].index = i;
        if (!keys_parse(toml_string(e, NULL), &keys[i].key))
            rc = s_fail(r, e, name,
                        "'%.100s' is not a key: expected 40 Z85 characters or 64 hex digits",
                        toml_string(e, NULL));
    }
    if (rc == STM_OK)
        s_add_keys_once(s_field(cfg, s, sizeof(stm_id *)), s_length(cfg, s), keys, n);
    free(keys);
    return rc;
}

static stm_err s_read_peers(const s_reader *r, const toml_value *list, const s_setting *s,
                            const char *name, node_config *cfg)
{
    for (size_t i = 0; i < toml_array_count(list); i++) {
        const toml_value *e = toml_array_at(list, i);
        config_peer peer;
        stm_error why = {0};
        if (config_parse_peer(toml_string(e, NULL), cfg->insecure, &peer, &why) != STM_OK)
            return s_fail(r, e, name, "%s", why.msg);
        s_push_peer(s_field(cfg, s, sizeof(config_peer *)), s_length(cfg, s), &peer);
        config_peer_free(&peer);
    }
    return STM_OK;
}

static stm_err s_read_int(const s_reader *r, const toml_value *v, const s_setting *s,
                          const char *name, node_config *cfg)
{
    int64_t i = toml_integer(v);
    if (i < 0)
        return s_fail(r, v, name, "must not be negative, found %lld", (long long)i);
    if (i < s->min)
        return s_fail(r, v, name, "must be at least %lld, found %lld", (long long)s->min,
                      (long long)i);
    if (i > s->max)
        return s_fail(r, v, name, "must be at most %lld, found %lld", (long long)s->max,
                      (long long)i);
    *(int *)s_field(cfg, s, sizeof(int)) = (int)i;
    return STM_OK;
}

static stm_err s_read_policy(const s_reader *r, const toml_value *v, const s_setting *s,
                             const char *name, node_config *cfg)
{
    const char *word = toml_string(v, NULL);
    for (size_t m = 0; m < S_NPOLICY_WORDS; m++) {
        if (strcmp(word, s_policy_words[m]) == 0) {
            *(policy_mode *)s_field(cfg, s, sizeof(policy_mode)) = (policy_mode)m;
            return STM_OK;
        }
    }
    return s_fail(r, v, name, "expected \"full\", \"shared\" or \"none\", found \"%.100s\"", word);
}

/* Reads row s from the file into cfg, when the file has it. */
static stm_err s_read(const s_reader *r, const toml_value *root, const s_setting *s,
                      node_config *cfg)
{
    const toml_value *v;
    char name[128];
    stm_error why = {0};
    stm_err rc = s_value(r, root, s, &v);
    if (rc != STM_OK || !v)
        return rc;
    s_name(s, name);
    switch (s->type) {
    case S_PATH:
    case S_ENDPOINT:
        if ((rc = s_string_ok(r, v, name)) != STM_OK)
            return rc;
        if (s->type == S_ENDPOINT &&
            config_check_endpoint(toml_string(v, NULL), true, &why) != STM_OK)
            return s_fail(r, v, name, "%s", why.msg);
        config_set_str(s_field(cfg, s, sizeof(char *)), toml_string(v, NULL));
        return STM_OK;
    case S_BOOL:
        *(bool *)s_field(cfg, s, sizeof(bool)) = toml_bool(v);
        return STM_OK;
    case S_INT:
        return s_read_int(r, v, s, name, cfg);
    case S_POLICY:
        return s_read_policy(r, v, s, name, cfg);
    case S_PEERS:
    case S_KEYS:
        if ((rc = s_list_ok(r, v, s, name)) != STM_OK)
            return rc;
        return s->type == S_PEERS ? s_read_peers(r, v, s, name, cfg)
                                  : s_read_keys(r, v, s, name, cfg);
    }
    return STM_OK;
}

/* A setting without a default must be in the file: a node is nothing without it. */
static stm_err s_check_required(const s_reader *r, const toml_value *root, const node_config *cfg)
{
    char name[128];
    for (size_t i = 0; i < S_NSETTINGS; i++) {
        const s_setting *s = &s_settings[i];
        if ((s->type == S_PATH || s->type == S_ENDPOINT) && !s->text &&
            !*(char **)s_field(cfg, s, sizeof(char *)))
            return s_fail(r, toml_table_get(root, s->section), s_name(s, name), "missing: %s",
                          s->doc);
    }
    return STM_OK;
}

/* The pairs of s_rules agree; the message points at the upper one when the file has
 * it, else at the lower. */
static stm_err s_check_rules(const s_reader *r, const toml_value *root, const node_config *cfg)
{
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules[0]; i++) {
        const char *sec = s_rules[i].section;
        const s_setting *lo = s_find(sec, s_rules[i].lower, strlen(s_rules[i].lower));
        const s_setting *hi = s_find(sec, s_rules[i].upper, strlen(s_rules[i].upper));
        int a = *(int *)s_field(cfg, lo, sizeof(int)), b = *(int *)s_field(cfg, hi, sizeof(int));
        if (s_rules[i].strict ? a < b : a <= b)
            continue;
        const toml_value *at;
        char name[128];
        stm_err rc = s_value(r, root, hi, &at);
        const s_setting *blamed = at ? hi : lo;
        if (rc == STM_OK && !at)
            rc = s_value(r, root, lo, &at);
        if (rc != STM_OK)
            return rc;
        if (s_rules[i].strict)
            return s_fail(r, at, s_name(blamed, name), "%s (%d) must be more than %s (%d)",
                          hi->key, b, lo->key, a);
        return s_fail(r, at, s_name(blamed, name), "%s (%d) must not be more than %s (%d)",
                      lo->key, a, hi->key, b);
    }
    return STM_OK;
}

stm_err config_load(const char *dir, node_config *cfg, stm_error *err)
{
    config_init(cfg, dir);
    char *path = config_path(dir, CONFIG_FILE);
    struct stat st;
    stm_err rc = STM_OK;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: no such file (a node's directory is made by 'stemma init --dir "
                           "%s ...')",
                           path, dir);
        free(path);
        return rc;
    }
    toml_value *root = NULL;
    rc = toml_parse_file(path, &root, err);
    s_reader r = {path, err};
    if (rc == STM_OK)
        rc = s_check_names(&r, root);
    /* Peers last: whether one may go without a key depends on security.insecure. */
    for (int peers = 0; peers < 2; peers++)
        for (size_t i = 0; rc == STM_OK && i < S_NSETTINGS; i++)
            if ((s_settings[i].type == S_PEERS) == peers)
                rc = s_read(&r, root, &s_settings[i], cfg);
    if (rc == STM_OK)
        rc = s_check_required(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_check_rules(&r, root, cfg);
    toml_destroy(&root);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ words about a row */

/* The doc of a row or section as a sentence: first letter capitalised, a full stop. */
static void s_put_sentence(buf_t *b, const char *doc)
{
    buf_putc(b, (char)toupper((unsigned char)doc[0]));
    buf_printf(b, "%s.", doc + 1);
}

/* The row's doc, with what s_rules ask of it ("; more than heartbeat_ms"). */
static void s_put_doc(buf_t *b, const s_setting *s)
{
    buf_puts(b, s->doc);
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules[0]; i++)
        if (strcmp(s_rules[i].section, s->section) == 0 && strcmp(s_rules[i].upper, s->key) == 0)
            buf_printf(b, "; %s %s", s_rules[i].strict ? "more than" : "at least",
                       s_rules[i].lower);
}

/* What values the row takes. md: literals in `backquotes`, for Markdown. */
static void s_put_type(buf_t *b, const s_setting *s, bool md)
{
    const char *q = md ? "`" : "";
    switch (s->type) {
    case S_PATH:
        buf_puts(b, "path");
        break;
    case S_ENDPOINT:
        buf_puts(b, "endpoint");
        break;
    case S_BOOL:
        buf_printf(b, "%strue%s or %sfalse%s", q, q, q, q);
        break;
    case S_INT:
        buf_printf(b, "integer, %lld to %lld", (long long)s->min, (long long)s->max);
        break;
    case S_POLICY:
        for (size_t m = 0; m < S_NPOLICY_WORDS; m++)
            buf_printf(b, "%s%s\"%s\"%s", m == 0 ? "" : m + 1 == S_NPOLICY_WORDS ? " or " : ", ",
                       q, s_policy_words[m], q);
        break;
    case S_PEERS:
    case S_KEYS:
        buf_printf(b, "list of strings, at most %lld", (long long)s->max);
        break;
    }
}

/* The row's default as TOML writes it; "" for a setting that has none. */
static void s_put_default(buf_t *b, const s_setting *s)
{
    switch (s->type) {
    case S_PATH:
    case S_ENDPOINT:
        if (s->text)
            buf_printf(b, "\"%s\"", s->text);
        break;
    case S_BOOL:
        buf_puts(b, s->value ? "true" : "false");
        break;
    case S_INT:
        buf_printf(b, "%lld", (long long)s->value);
        break;
    case S_POLICY:
        buf_printf(b, "\"%s\"", s_policy_words[s->value]);
        break;
    case S_PEERS:
    case S_KEYS:
        buf_puts(b, "[]");
        break;
    }
}

/* ------------------------------------------------------------------ writing node.toml */

/* Appends text as "# " comment lines of at most 80 columns, broken at spaces. */
static void s_put_comment(buf_t *b, const char *text)
{
    size_t col = 0;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > 0 && col + 1 + word > 80) {
            buf_putc(b, '\n');
            col = 0;
        }
        if (col == 0) {
            buf_putc(b, '#');
            col = 1;
        }
        buf_printf(b, " %.*s", (int)word, text);
        col += 1 + word;
        text += word;
        text += strspn(text, " ");
    }
    if (col > 0)
        buf_putc(b, '\n');
}

/* Appends v (taken) as TOML, written by toml/'s emitter: "key = value\n". */
static void s_put(buf_t *b, const char *key, toml_value *v)
{
    toml_value *t = toml_new_table();
    toml_table_set(t, key, v);
    char *line = toml_emit(t, NULL);
    buf_puts(b, line);
    free(line);
    toml_destroy(&t);
}

/* One string as a TOML value, no key, no newline. */
static void s_put_literal(buf_t *b, const char *s)
{
    toml_value *t = toml_new_table();
    toml_table_set(t, "v", toml_new_string(s, strlen(s)));
    char *line = toml_emit(t, NULL);
    /* "v = VALUE\n" */
    size_t n = strlen(line);
    buf_append(b, line + 4, n - 5);
    free(line);
    toml_destroy(&t);
}

/* A list of strings (taken), one per line, so that a long list stays readable and
 * diffs well. */
static void s_put_list(buf_t *b, const char *key, char **items, size_t n)
{
    if (n == 0) {
        buf_printf(b, "%s = []\n", key);
        return;
    }
    buf_printf(b, "%s = [\n", key);
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, "    ");
        s_put_literal(b, items[i]);
        buf_puts(b, ",\n");
        free(items[i]);
    }
    buf_puts(b, "]\n");
}

/* Row s's value in cfg as a "key = value" line (or lines, for a list). */
static void s_put_value(buf_t *b, const node_config *cfg, const s_setting *s)
{
    switch (s->type) {
    case S_PATH:
    case S_ENDPOINT: {
        const char *str = *(char **)s_field(cfg, s, sizeof(char *));
        s_put(b, s->key, toml_new_string(str ? str : "", str ? strlen(str) : 0));
        break;
    }
    case S_BOOL:
        s_put(b, s->key, toml_new_bool(*(bool *)s_field(cfg, s, sizeof(bool))));
        break;
    case S_INT:
        s_put(b, s->key, toml_new_integer(*(int *)s_field(cfg, s, sizeof(int))));
        break;
    case S_POLICY: {
        policy_mode m = *(policy_mode *)s_field(cfg, s, sizeof(policy_mode));
        const char *word = (size_t)m < S_NPOLICY_WORDS ? s_policy_words[m] : "none";
        s_put(b, s->key, toml_new_string(word, strlen(word)));
        break;
    }
    case S_PEERS:
    case S_KEYS: {
        size_t n = *s_length(cfg, s);
        char **items = stm_calloc(n + 1, sizeof *items);
        for (size_t i = 0; i < n; i++) {
            if (s->type == S_PEERS) {
                items[i] = config_peer_format(&(*(config_peer **)s_field(cfg, s, sizeof(config_peer *)))[i]);
            } else {
                items[i] = stm_malloc(KEYS_Z85_LEN + 1);
                keys_to_z85(&(*(stm_id **)s_field(cfg, s, sizeof(stm_id *)))[i], items[i]);
            }
        }
        s_put_list(b, s->key, items, n);
        free(items);
        break;
    }
    }
}

static const char *s_header =
    "# node.toml - the settings of a stemma node, written by 'stemma init'.\n"
    "#\n"
    "# The node reads this file when it starts and never writes it. A setting left out\n"
    "# takes the default its comment gives; a setting or section stemma does not know is\n"
    "# refused, with its line. Keys are CURVE public keys, written in Z85 (40 characters)\n"
    "# or hex (64 digits). docs/user-guide.md, \"Setting up a node\", tells more.\n";

stm_err config_save(const node_config *cfg, stm_error *err)
{
    buf_t b = BUF_INIT, words = BUF_INIT;
    buf_puts(&b, s_header);
    for (size_t i = 0; i < S_NSECTIONS; i++) {
        buf_reset(&words);
        s_put_sentence(&words, s_sections[i].doc);
        buf_putc(&b, '\n');
        s_put_comment(&b, buf_str(&words));
        buf_printf(&b, "[%s]\n", s_sections[i].name);
        for (size_t j = 0; j < S_NSETTINGS; j++) {
            const s_setting *s = &s_settings[j];
            if (strcmp(s->section, s_sections[i].name) != 0)
                continue;
            /* "Doc. Type; default X." */
            buf_reset(&words);
            s_put_doc(&words, s);
            buf_t doc = BUF_INIT;
            s_put_sentence(&doc, buf_str(&words));
            buf_reset(&words);
            s_put_type(&words, s, false);
            buf_printf(&doc, " %c%s; ", toupper((unsigned char)buf_str(&words)[0]),
                       buf_str(&words) + 1);
            buf_reset(&words);
            s_put_default(&words, s);
            buf_printf(&doc, words.len ? "default %s." : "required.", buf_str(&words));
            s_put_comment(&b, buf_str(&doc));
            buf_free(&doc);
            s_put_value(&b, cfg, s);
        }
    }
    char *path = config_path(cfg->dir, CONFIG_FILE);
    stm_err rc = safefile_write(path, b.data, b.len, 0644, false, err);
    free(path);
    buf_free(&words);
    buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ the user guide */

char *config_doc_markdown(void)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < S_NSECTIONS; i++) {
        buf_printf(&b, "%s`[%s]` — %s.", i ? "\n" : "", s_sections[i].name, s_sections[i].doc);
        buf_puts(&b, "\n\n| setting | type | default | what it is |\n|---|---|---|---|\n");
        for (size_t j = 0; j < S_NSETTINGS; j++) {
            const s_setting *s = &s_settings[j];
            if (strcmp(s->section, s_sections[i].name) != 0)
                continue;
            buf_printf(&b, "| `%s` | ", s->key);
            s_put_type(&b, s, true);
            buf_t def = BUF_INIT;
            s_put_default(&def, s);
            buf_printf(&b, def.len ? " | `%s` | " : " | (required)%s | ", buf_str(&def));
            buf_free(&def);
            s_put_doc(&b, s);
            buf_puts(&b, " |\n");
        }
    }
    return buf_detach(&b);
}

/* ------------------------------------------------------------------ known_peers */

static const char *s_known_peers_header =
    "# known_peers - the public keys this node trusted on first use\n"
    "# (trust_on_first_use in node.toml), one Z85 key per line, added by the node.\n"
    "# Delete a line to stop trusting that key.\n";

stm_err config_known_peers_load(const char *dir, stm_id **keys, size_t *count, stm_error *err)
{
    *keys = NULL;
    *count = 0;
    char *path = config_path(dir, CONFIG_KNOWN_PEERS_FILE);
    stm_err rc = STM_OK;
    /* O_NONBLOCK: a FIFO is refused as not a regular file rather than waited on. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (errno != ENOENT)
            rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return rc;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = stm_error_set(err, STM_EINPUT, "%s: not a regular file", path);
    else if (st.st_size > (off_t)CONFIG_MAX_KNOWN_PEERS_BYTES)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: %lld bytes is more than the %u a list of keys "
                           "may have",
                           path, (long long)st.st_size, CONFIG_MAX_KNOWN_PEERS_BYTES);
    char line[512];
    size_t cap = 0;
    int lineno = 0;
    long at = 0;
    while (rc == STM_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        /* fgets read more than strlen sees when the line holds a NUL byte: a file of
         * NULs would otherwise read as blank lines, a damaged file taken as empty. */
        long next = ftell(f);
        if (next - at != (long)n) {
            rc = stm_error_set(err, STM_EINPUT, "%s:%d: holds a NUL byte; expected one key per "
                               "line", path, lineno);
            break;
        }
        at = next;
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            /* Longer than any key: fine for a comment, whose rest is skipped. */
            if (line[strspn(line, " \t")] != '#') {
                rc = stm_error_set(err, STM_EINPUT, "%s:%d: line too long for a key", path, lineno);
                break;
            }
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                if (c == '\0')
                    break;
            if (c == '\0') {
                rc = stm_error_set(err, STM_EINPUT, "%s:%d: holds a NUL byte; expected one key "
                                   "per line", path, lineno);
                break;
            }
            at = ftell(f);
            continue;
        }
        while (n > 0 && strchr(" \t\r\n", line[n - 1]))
            line[--n] = '\0';
        char *s = line + strspn(line, " \t");
        stm_id key;
        if (*s == '\0')
            continue;
        if (keys_parse(s, &key)) {
            if (*count >= CONFIG_MAX_TRUSTED) {
                rc = stm_error_set(err, STM_EINPUT, "%s:%d: more than %d keys", path, lineno,
                                   CONFIG_MAX_TRUSTED);
                break;
            }
            *keys = stm_grow(*keys, &cap, *count + 1, sizeof **keys);
            (*keys)[(*count)++] = key;
        } else if (*s != '#') {
            rc = stm_error_set(err, STM_EINPUT,
                               "%s:%d: not a key (expected one key per line, 40 Z85 characters "
                               "or 64 hex digits, or a # comment)",
                               path, lineno);
        }
    }
    if (rc == STM_OK && ferror(f))
        rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    free(path);
    if (rc != STM_OK) {
        free(*keys);
        *keys = NULL;
        *count = 0;
    }
    return rc;
}

stm_err config_known_peer_add(const char *dir, const stm_id *key, stm_error *err)
{
    char z85[KEYS_Z85_LEN + 1];
    keys_to_z85(key, z85);
    char *path = config_path(dir, CONFIG_KNOWN_PEERS_FILE);
    stm_err rc = safefile_append_line(path, z85, KEYS_Z85_LEN, 0644, s_known_peers_header, err);
    free(path);
    return rc;
}
