/* settings.c - the table of node.toml's settings (settings.h), and what the table
 * itself answers: a row's field and default, the words that describe a row, and
 * whether a name is one of the table's (and if not, which one it most likely meant).
 *
 * To add a setting: a row below and a field in node_config (config.h). Its default,
 * bounds and doc are written here and nowhere else; node.toml's comments and the user
 * guide's tables are made from them. */
#include "settings.h"
#include "mesh.h"
#include "sync/apply.h"

#include "base/mem.h"
#include "lineage/schemaset.h"
#include "sync/codec.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_ROW(sec, k, t, f)                                                                        \
    .section = sec, .key = k, .type = t, .field = offsetof(node_config, f),                        \
    .size = sizeof(((node_config *)0)->f)
#define S_LENGTH(f) .count = offsetof(node_config, f)

const settings_section stm_settings_sections[] = {
    {"node", "the node's database, its schema set, and where it listens"},
    {"peers", "the nodes this node connects to"},
    {"mesh", "which of the nodes it learns of (from peer lists, beacons, or their own HELLOs) "
             "a node keeps as peers (docs/user-guide.md, \"A sparse mesh\")"},
    {"discovery", "finding peers on the local network by UDP beacons, without configured "
                  "endpoints; a node found so is met only when its key is trusted"},
    {"security", "who may connect: CURVE keys, and trust on first use"},
    {"policy", "what syncs with a peer, by how its schema history relates to this node's "
               "(stemma compare): \"full\" syncs every table and column both have, \"shared\" "
               "only the columns both have with the same type, \"none\" nothing (the peer is "
               "still reported)"},
    {"timing", "heartbeats, liveness and reconnecting"},
    {"sync", "sending operations to peers and storing theirs"},
    {"compaction", "pruning the operations later writes replaced, once every known peer holds "
                   "the later write (docs/user-guide.md, \"Compaction\")"},
};
const size_t stm_settings_nsections =
    sizeof stm_settings_sections / sizeof stm_settings_sections[0];

const char *const stm_settings_policy_words[] = {
    [POLICY_FULL] = "full", [POLICY_SHARED] = "shared", [POLICY_NONE] = "none"};
const size_t stm_settings_npolicy_words =
    sizeof stm_settings_policy_words / sizeof stm_settings_policy_words[0];
const char *const stm_settings_log_words[] = {
    [STM_LOG_INFO] = "info", [STM_LOG_WARN] = "warn", [STM_LOG_ERROR] = "error"};
const size_t stm_settings_nlog_words =
    sizeof stm_settings_log_words / sizeof stm_settings_log_words[0];

/* A row of words: policy_mode's or log_level's. */
#define S_POLICY                                                                                   \
    .words = stm_settings_policy_words,                                                            \
    .nwords = sizeof stm_settings_policy_words / sizeof stm_settings_policy_words[0]
#define S_LOG_WORDS                                                                                \
    .words = stm_settings_log_words,                                                               \
    .nwords = sizeof stm_settings_log_words / sizeof stm_settings_log_words[0]

/* Every setting of node.toml. */
const settings_row stm_settings_rows[] = {
    {S_ROW("node", "db", SETTINGS_PATH, db),
     .doc = "the application's SQLite database; a relative path is relative to the node's "
            "directory"},
    {S_ROW("node", "schemas", SETTINGS_PATH, schemas),
     .doc = "the schema set: the directory of numbered migrations (NNN_description.sql); a "
            "relative path is relative to the node's directory"},
    {S_ROW("node", "layout", SETTINGS_LAYOUT, layout), .text = "auto",
     .doc = "how the schema set names its migrations: stemma's own layout, or another "
            "tool's (Flyway, Diesel, sqlx, dbmate, goose, golang-migrate); \"auto\": found "
            "from its files"},
    {S_ROW("node", "log_level", SETTINGS_WORD, log_level), .value = STM_LOG_INFO, S_LOG_WORDS,
     .doc = "the least important lines the node logs: \"info\" every event, \"warn\" "
            "warnings and errors, \"error\" errors only; read again on SIGHUP"},
    {S_ROW("node", "bind", SETTINGS_BIND, bind), .text = CONFIG_DEFAULT_BIND,
     .doc = "where the node listens for peers: HOST * is every interface, the default this "
            "machine only; \"\": nowhere, the node only dials its peers (behind NAT, say) "
            "and they answer on its connections"},
    {S_ROW("node", "advertise", SETTINGS_DIAL, advertise), .text = "",
     .doc = "the endpoint peers are told to reach this node at, tcp://HOST:PORT with HOST an "
            "address or name they can dial; \"\": the bind endpoint, unless its HOST is a "
            "wildcard (*, 0.0.0.0, [::]): then none, and only peers that list this node in "
            "[peers] reach it"},
    {S_ROW("node", "name", SETTINGS_NAME, name), .text = "",
     .doc = "this device's name for people, shown in its peers' reports and logs (at most "
            "64 bytes); \"\": the machine's host name"},
    {S_ROW("node", "control", SETTINGS_ENDPOINT, control),
     .text = "ipc://NODE_DIR/" CONFIG_CONTROL_SOCKET,
     .doc = "where the node answers queries about itself (its peers, what syncs, what is "
            "parked); NODE_DIR is the node's directory, absolute"},

    {S_ROW("peers", "addresses", SETTINGS_PEERS, peers), S_LENGTH(npeers), .max = CONFIG_MAX_PEERS,
     .doc = "the peers this node connects to, each \"KEY@ENDPOINT\": KEY the peer's public "
            "key (its stemma init prints it), which may be left out only when "
            "security.insecure is true. Peers not listed may still connect to this node"},

    {S_ROW("mesh", "max_learned_peers", SETTINGS_INT, max_learned_peers), .value = 8, .min = 0,
     .max = MESH_MAX_LEARNED,
     .doc = "the most learned nodes this node dials: log2 of the peers it knows and one more "
            "(3 of 4, 5 of 16, 7 of 64), never more than this; as many more that dial it are "
            "let in, and any that lists it in [peers]. The others are remembered, and dialled "
            "when a kept one goes away; 0: it dials only its [peers], and lets in only nodes "
            "that list it"},

    {S_ROW("discovery", "enabled", SETTINGS_BOOL, discovery), .value = false,
     .doc = "true: the node broadcasts a beacon (its key and mesh port) and listens for "
            "other nodes' beacons, and dials each node it hears whose key it trusts (any, "
            "under trust_on_first_use or insecure); a node the network cannot dial (bind "
            "\"\", ipc://, IPv6 or a loopback address) listens and sends none"},
    {S_ROW("discovery", "port", SETTINGS_INT, discovery_port), .value = 7422, .min = 1,
     .max = 65535,
     .doc = "the UDP port beacons are sent to and heard on: the same for every node of the "
            "network, and open in its firewalls"},
    {S_ROW("discovery", "interval_ms", SETTINGS_INT, discovery_interval_ms), .value = 1000,
     .min = CONFIG_MIN_BEACON_MS, .max = CONFIG_MAX_MS,
     .doc = "how often, in milliseconds, the node sends its beacon"},
    {S_ROW("discovery", "broadcast", SETTINGS_IPV4, discovery_broadcast), .text = "255.255.255.255",
     .doc = "the IPv4 address beacons are sent to: 255.255.255.255 reaches the network of "
            "the default route; a network's own broadcast address (192.168.1.255, say) "
            "picks that network"},

    {S_ROW("security", "insecure", SETTINGS_BOOL, insecure), .value = false,
     .doc = "true: plain TCP, without CURVE encryption and authentication, and any peer is "
            "accepted; for a closed test network only"},
    {S_ROW("security", "trust_on_first_use", SETTINGS_BOOL, trust_on_first_use), .value = false,
     .doc = "true: a peer presenting a key that is not trusted is accepted, and its key is "
            "added to known_peers in the node's directory (trusted from then on)"},
    {S_ROW("security", "trusted", SETTINGS_KEYS, trusted), S_LENGTH(ntrusted),
     .max = CONFIG_MAX_TRUSTED,
     .doc = "the public keys (Z85 or hex) a peer may present; stemma init adds the keys of "
            "the peers it was given"},

    {S_ROW("policy", "same", SETTINGS_WORD, policy.mode[RELATION_SAME]), .value = POLICY_FULL, S_POLICY,
     .doc = "the peer's history is this node's"},
    {S_ROW("policy", "ancestor", SETTINGS_WORD, policy.mode[RELATION_ANCESTOR]),
     .value = POLICY_FULL, S_POLICY, .doc = "the peer's history goes on from this node's (it is newer)"},
    {S_ROW("policy", "descendant", SETTINGS_WORD, policy.mode[RELATION_DESCENDANT]),
     .value = POLICY_FULL, S_POLICY,
     .doc = "this node's history goes on from the peer's (this node is newer)"},
    {S_ROW("policy", "divergent", SETTINGS_WORD, policy.mode[RELATION_DIVERGENT]),
     .value = POLICY_SHARED, S_POLICY, .doc = "the histories parted after a common version"},
    {S_ROW("policy", "unrelated", SETTINGS_WORD, policy.mode[RELATION_UNRELATED]),
     .value = POLICY_NONE, S_POLICY, .doc = "the histories have no version in common (another application)"},
    {S_ROW("policy", "min_supported_version", SETTINGS_INT, policy.min_supported_version),
     .value = 0, .min = 0, .max = SCHEMASET_MAX_VERSIONS,
     .doc = "a peer whose schema version is below this is refused, with the reason in the "
            "node's report; 0: no minimum"},
    {S_ROW("policy", "max_version_gap", SETTINGS_INT, policy.max_version_gap), .value = 0, .min = 0,
     .max = SCHEMASET_MAX_VERSIONS,
     .doc = "a peer more versions away than this is reported with a recommendation to "
            "resync; 0: no limit"},

    {S_ROW("timing", "heartbeat_ms", SETTINGS_INT, heartbeat_ms), .value = 1000, .min = 1,
     .max = CONFIG_MAX_MS, .doc = "how often, in milliseconds, a quiet peer is sent a heartbeat"},
    {S_ROW("timing", "peer_timeout_ms", SETTINGS_INT, peer_timeout_ms), .value = 5000, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "how long, in milliseconds, a peer may stay silent before it is taken as gone"},
    {S_ROW("timing", "reconnect_min_ms", SETTINGS_INT, reconnect_min_ms), .value = 100, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "the first wait, in milliseconds, before reconnecting to a lost peer; each failed "
            "attempt doubles it, up to reconnect_max_ms"},
    {S_ROW("timing", "reconnect_max_ms", SETTINGS_INT, reconnect_max_ms), .value = 5000, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "the longest wait, in milliseconds, between reconnection attempts"},

    {S_ROW("sync", "batch_ops", SETTINGS_INT, batch_ops), .value = 2000, .min = 1,
     .max = CODEC_MAX_BATCH_OPS, .doc = "operations per batch sent to a peer"},
    {S_ROW("sync", "window", SETTINGS_INT, window), .value = 4, .min = 1, .max = CONFIG_MAX_WINDOW,
     .doc = "batches in flight to one peer before waiting for it to acknowledge"},
    {S_ROW("sync", "vector_deltas", SETTINGS_BOOL, vector_deltas), .value = true,
     .doc = "send version vectors to peers that take them (vdelta.v1) as the entries "
            "changed since the last exchange, or a digest, instead of whole; false: whole, "
            "as an older stemma does (docs/protocol.md, \"Vector deltas\")"},
    {S_ROW("sync", "local_poll_ms", SETTINGS_INT, local_poll_ms), .value = 200, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "how often, in milliseconds, the node looks for writes to its own database"},
    {S_ROW("sync", "busy_timeout_ms", SETTINGS_INT, busy_timeout_ms), .value = 1000, .min = 1,
     .max = CONFIG_MAX_MS,
     .doc = "how long, in milliseconds, one attempt to store received operations waits while "
            "another program holds the database's write lock; then the node answers its "
            "peers and control socket and tries again, losing nothing (docs/user-guide.md, "
            "\"When the database cannot take operations\")"},
    {S_ROW("sync", "max_clock_ahead_ms", SETTINGS_INT, max_clock_ahead_ms),
     .value = APPLY_MAX_CLOCK_AHEAD_MS, .min = 0, .max = CONFIG_MAX_MS,
     .doc = "how far, in milliseconds, an operation's clock may be ahead of this machine's "
            "before it is parked until this machine's clock catches up (docs/user-guide.md, "
            "\"How operations combine\")"},

    {S_ROW("compaction", "enabled", SETTINGS_BOOL, compact), .value = true,
     .doc = "true: the node prunes, a slice at a time between its other work, the operations "
            "whose cells later writes replaced; false: the oplog keeps every operation"},
    {S_ROW("compaction", "interval_ms", SETTINGS_INT, compact_interval_ms), .value = 600000,
     .min = 1000, .max = CONFIG_MAX_MS,
     .doc = "how often, in milliseconds, a compaction pass starts (stemma compact starts one "
            "at once)"},
    {S_ROW("compaction", "known_peer_hours", SETTINGS_INT, known_peer_hours), .value = 168,
     .min = 0, .max = 87600,
     .doc = "how long, in hours, a peer this node synced with still holds pruning back once "
            "it falls silent: what it lacks is kept for it until then; after that, and for a "
            "peer never heard of, it receives the current cells instead of the history; 0: "
            "only peers connected at the pass hold it back"},
};
const size_t stm_settings_nrows = sizeof stm_settings_rows / sizeof stm_settings_rows[0];

/* A timeout no longer than the heartbeat would drop every quiet peer. */
const settings_rule stm_settings_rules[] = {
    {"timing", "heartbeat_ms", "peer_timeout_ms", true},
    {"timing", "reconnect_min_ms", "reconnect_max_ms", false},
};
const size_t stm_settings_nrules = sizeof stm_settings_rules / sizeof stm_settings_rules[0];

const settings_row *stm_settings_find(const char *section, const char *key, size_t len)
{
    for (size_t i = 0; i < stm_settings_nrows; i++)
        if (strcmp(stm_settings_rows[i].section, section) == 0 &&
            strlen(stm_settings_rows[i].key) == len &&
            memcmp(stm_settings_rows[i].key, key, len) == 0)
            return &stm_settings_rows[i];
    return NULL;
}

static bool s_is_section(const char *name, size_t len)
{
    for (size_t i = 0; i < stm_settings_nsections; i++)
        if (strlen(stm_settings_sections[i].name) == len &&
            memcmp(stm_settings_sections[i].name, name, len) == 0)
            return true;
    return false;
}

void *stm_settings_field(const node_config *cfg, const settings_row *s, size_t size)
{
    assert(s->size == size);
    (void)size;
    return (char *)cfg + s->field;
}

size_t *stm_settings_length(const node_config *cfg, const settings_row *s)
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
    stm_buf_printf(&b, "%.*s%s%s", (int)(at - text), text, abs_dir, rest);
    return stm_buf_detach(&b);
}

void stm_settings_set_default(node_config *cfg, const settings_row *s, const char *abs_dir)
{
    switch (s->type) {
    case SETTINGS_PATH:
    case SETTINGS_ENDPOINT:
    case SETTINGS_BIND:
    case SETTINGS_NAME:
    case SETTINGS_DIAL:
    case SETTINGS_IPV4:
    case SETTINGS_LAYOUT: {
        char **str = stm_settings_field(cfg, s, sizeof(char *));
        free(*str);
        *str = s->text ? s_expand(s->text, abs_dir) : NULL;
        break;
    }
    case SETTINGS_BOOL:
        *(bool *)stm_settings_field(cfg, s, sizeof(bool)) = s->value != 0;
        break;
    case SETTINGS_INT:
        *(int *)stm_settings_field(cfg, s, sizeof(int)) = (int)s->value;
        break;
    case SETTINGS_WORD:
        *(int *)stm_settings_field(cfg, s, sizeof(int)) = (int)s->value;
        break;
    case SETTINGS_PEERS:
    case SETTINGS_KEYS:
        break; /* empty lists: stm_config_init zeroed them */
    }
}

/* ------------------------------------------------------------------ words about a row */

void stm_settings_put_doc(buf_t *b, const settings_row *s)
{
    stm_buf_puts(b, s->doc);
    for (size_t i = 0; i < stm_settings_nrules; i++)
        if (strcmp(stm_settings_rules[i].section, s->section) == 0 &&
            strcmp(stm_settings_rules[i].upper, s->key) == 0)
            stm_buf_printf(b, "; %s %s", stm_settings_rules[i].strict ? "more than" : "at least",
                           stm_settings_rules[i].lower);
}

void stm_settings_put_type(buf_t *b, const settings_row *s, bool md)
{
    const char *q = md ? "`" : "";
    switch (s->type) {
    case SETTINGS_PATH:
        stm_buf_puts(b, "path");
        break;
    case SETTINGS_ENDPOINT:
        stm_buf_puts(b, "endpoint");
        break;
    case SETTINGS_BIND:
    case SETTINGS_DIAL:
        stm_buf_printf(b, "endpoint, or %s\"\"%s", q, q);
        break;
    case SETTINGS_NAME:
        stm_buf_puts(b, "text");
        break;
    case SETTINGS_IPV4:
        stm_buf_puts(b, "IPv4 address");
        break;
    case SETTINGS_LAYOUT:
        for (int l = LAYOUT_AUTO; l < LAYOUT_COUNT; l++)
            stm_buf_printf(b, "%s%s\"%s\"%s",
                           l == LAYOUT_AUTO        ? ""
                           : l + 1 == LAYOUT_COUNT ? " or "
                                                   : ", ",
                           q, stm_layout_name((schemaset_layout)l), q);
        break;
    case SETTINGS_BOOL:
        stm_buf_printf(b, "%strue%s or %sfalse%s", q, q, q, q);
        break;
    case SETTINGS_INT:
        stm_buf_printf(b, "integer, %lld to %lld", (long long)s->min, (long long)s->max);
        break;
    case SETTINGS_WORD:
        for (size_t m = 0; m < s->nwords; m++)
            stm_buf_printf(b, "%s%s\"%s\"%s",
                           m == 0                ? ""
                           : m + 1 == s->nwords ? " or "
                                                 : ", ",
                           q, s->words[m], q);
        break;
    case SETTINGS_PEERS:
    case SETTINGS_KEYS:
        stm_buf_printf(b, "list of strings, at most %lld", (long long)s->max);
        break;
    }
}

void stm_settings_put_default(buf_t *b, const settings_row *s)
{
    switch (s->type) {
    case SETTINGS_PATH:
    case SETTINGS_ENDPOINT:
    case SETTINGS_BIND:
    case SETTINGS_NAME:
    case SETTINGS_DIAL:
    case SETTINGS_IPV4:
    case SETTINGS_LAYOUT:
        if (s->text)
            stm_buf_printf(b, "\"%s\"", s->text);
        break;
    case SETTINGS_BOOL:
        stm_buf_puts(b, s->value ? "true" : "false");
        break;
    case SETTINGS_INT:
        stm_buf_printf(b, "%lld", (long long)s->value);
        break;
    case SETTINGS_WORD:
        stm_buf_printf(b, "\"%s\"", s->words[s->value]);
        break;
    case SETTINGS_PEERS:
    case SETTINGS_KEYS:
        stm_buf_puts(b, "[]");
        break;
    }
}

/* ------------------------------------------------------------------ names not in the table */

/* name (len bytes, from the file) as one line of a message can hold it (buf.h), cut
 * after 60 bytes; a NUL in it ends what is shown. */
static void s_put_shown(buf_t *b, const char *name, size_t len)
{
    char cut[61];
    size_t n = len < 60 ? len : 60;
    memcpy(cut, name, n);
    cut[n] = '\0';
    stm_buf_put_printable(b, cut);
    if (len > 60)
        stm_buf_puts(b, "...");
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
    for (size_t i = 0; i < stm_settings_nsections; i++) {
        size_t d = s_nearness(name, len, stm_settings_sections[i].name);
        if (d < best_d) {
            best = stm_settings_sections[i].name;
            best_d = d;
        }
    }
    return best;
}

/* The setting an unknown key in section (NULL: outside any) most likely meant: the
 * nearest in its own section, else the nearest in any (a setting in the wrong section,
 * or outside all); NULL when none is near. */
static const settings_row *s_nearest_setting(const char *section, const char *name, size_t len)
{
    for (int anywhere = 0; anywhere < 2; anywhere++) {
        const settings_row *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t i = 0; i < stm_settings_nrows; i++) {
            if (!anywhere && (!section || strcmp(stm_settings_rows[i].section, section) != 0))
                continue;
            size_t d = s_nearness(name, len, stm_settings_rows[i].key);
            if (d < best_d) {
                best = &stm_settings_rows[i];
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
    const char *names[stm_settings_nrows + stm_settings_nsections];
    size_t n = 0;
    for (size_t i = 0; !section && i < stm_settings_nsections; i++)
        names[n++] = stm_settings_sections[i].name;
    for (size_t i = 0; section && i < stm_settings_nrows; i++)
        if (strcmp(stm_settings_rows[i].section, section) == 0)
            names[n++] = stm_settings_rows[i].key;
    for (size_t i = 0; i < n; i++)
        stm_buf_printf(b, section ? "%s%s" : "%s[%s]",
                       i == 0       ? ""
                       : i + 1 == n ? " and "
                                    : ", ",
                       names[i]);
}

/* The one line for a name the table does not have, v being its value: a table is an
 * unknown section, anything else an unknown key. section is the known section it is
 * in, or NULL at the top of the file. */
static stm_err s_unknown(const char *path, stm_error *err, const toml_value *v, const char *section,
                         const char *name, size_t len)
{
    bool table = stm_toml_type_of(v) == TOML_TABLE;
    buf_t b = BUF_INIT;
    stm_buf_puts(&b, path);
    if (stm_toml_line(v) > 0)
        stm_buf_printf(&b, ":%d", stm_toml_line(v));
    stm_buf_printf(&b, ": unknown %s %s%s%s", table ? "section" : "key", table ? "[" : "",
                   section ? section : "", section ? "." : "");
    s_put_shown(&b, name, len);
    stm_buf_puts(&b, table ? "]" : "");
    const char *near_section = table && !section ? s_nearest_section(name, len) : NULL;
    const settings_row *near = table ? NULL : s_nearest_setting(section, name, len);
    if (near_section) {
        stm_buf_printf(&b, "; did you mean [%s]?", near_section);
    } else if (near) {
        stm_buf_printf(&b, "%s; did you mean %s.%s?", section ? "" : " outside any section",
                       near->section, near->key);
    } else if (section) {
        stm_buf_printf(&b, "; [%s] holds ", section);
        s_put_known(&b, section);
    } else {
        stm_buf_puts(&b, table ? "; the sections are " : "; every setting is in a section: ");
        s_put_known(&b, NULL);
    }
    stm_err rc = stm_error_set(err, STM_EINPUT, "%s", stm_buf_str(&b));
    stm_buf_free(&b);
    return rc;
}

stm_err stm_settings_check_names(const toml_value *root, const char *path, stm_error *err)
{
    for (size_t i = 0; i < stm_toml_table_count(root); i++) {
        const char *name = stm_toml_table_key(root, i);
        size_t len = stm_toml_table_key_len(root, i);
        const toml_value *sec = stm_toml_table_at(root, i);
        if (!s_is_section(name, len))
            return s_unknown(path, err, sec, NULL, name, len);
        for (size_t j = 0; stm_toml_type_of(sec) == TOML_TABLE && j < stm_toml_table_count(sec);
             j++)
            if (!stm_settings_find(name, stm_toml_table_key(sec, j),
                                   stm_toml_table_key_len(sec, j)))
                return s_unknown(path, err, stm_toml_table_at(sec, j), name,
                                 stm_toml_table_key(sec, j), stm_toml_table_key_len(sec, j));
    }
    return STM_OK;
}
