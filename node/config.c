/* config.c - node.toml and known_peers (config.h).
 *
 * Reading walks the sections it knows and, for each setting, checks the type, then the
 * value, then (for pairs of settings) that the two agree; the first problem found is
 * the one reported, at the line and column of the value at fault. Writing builds the
 * file line by line, so each setting can have its comment above it, and lets
 * toml/'s emitter write every value, so strings are escaped as TOML wants. */
#include "config.h"

#include "base/buf.h"
#include "base/mem.h"
#include "lineage/schemaset.h"
#include "toml/toml.h"
#include "base/safefile.h"
#include "sync/codec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const s_sync_names[] = {"full", "shared", "none"};

/* The defaults of [policy], indexed by relation_kind. */
static const config_sync s_policy_defaults[RELATION_UNRELATED + 1] = {
    CONFIG_SYNC_FULL, CONFIG_SYNC_FULL, CONFIG_SYNC_FULL, CONFIG_SYNC_SHARED, CONFIG_SYNC_NONE};

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
    cfg->bind = stm_strdup(CONFIG_DEFAULT_BIND);
    char *abs = config_absolute(dir);
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/')
        abs[--n] = '\0';
    buf_t b = BUF_INIT;
    buf_printf(&b, "ipc://%s%s%s", abs, strcmp(abs, "/") == 0 ? "" : "/", CONFIG_CONTROL_SOCKET);
    cfg->control = buf_detach(&b);
    free(abs);
    memcpy(cfg->policy, s_policy_defaults, sizeof cfg->policy);
    cfg->heartbeat_ms = 1000;
    cfg->peer_timeout_ms = 5000;
    cfg->reconnect_min_ms = 100;
    cfg->reconnect_max_ms = 5000;
    cfg->batch_ops = 2000;
    cfg->window = 4;
    cfg->local_poll_ms = 200;
    cfg->busy_timeout_ms = 1000;
}

void config_peer_free(config_peer *peer)
{
    free(peer->endpoint);
    peer->endpoint = NULL;
}

void config_destroy(node_config *cfg)
{
    free(cfg->dir);
    free(cfg->db);
    free(cfg->schemas);
    free(cfg->bind);
    free(cfg->control);
    for (size_t i = 0; i < cfg->npeers; i++)
        config_peer_free(&cfg->peers[i]);
    free(cfg->peers);
    free(cfg->trusted);
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

void config_add_peer(node_config *cfg, const config_peer *peer)
{
    cfg->peers = stm_realloc(cfg->peers, (cfg->npeers + 1) * sizeof *cfg->peers);
    config_peer *p = &cfg->peers[cfg->npeers++];
    *p = *peer;
    p->endpoint = stm_strdup(peer->endpoint);
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

const char *config_sync_name(config_sync s)
{
    return (unsigned)s <= CONFIG_SYNC_NONE ? s_sync_names[s] : "?";
}

bool config_sync_parse(const char *word, config_sync *out)
{
    for (int s = CONFIG_SYNC_FULL; s <= CONFIG_SYNC_NONE; s++) {
        if (strcmp(word, s_sync_names[s]) == 0) {
            *out = (config_sync)s;
            return true;
        }
    }
    return false;
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

/* What a setting is called in messages: "section.key". */
static const char *s_name(char *out, size_t cap, const char *section, const char *key)
{
    snprintf(out, cap, "%s.%s", section, key);
    return out;
}

static const char *s_a(toml_type t)
{
    return t == TOML_ARRAY || t == TOML_INTEGER ? "an" : "a";
}

/* The section's table, or NULL when it is absent (its settings take their defaults). */
static stm_err s_section(const s_reader *r, const toml_value *root, const char *name,
                         const toml_value **out)
{
    const toml_value *v = toml_table_get(root, name);
    *out = NULL;
    if (!v)
        return STM_OK;
    if (toml_type_of(v) != TOML_TABLE)
        return s_fail(r, v, name, "expected a table ([%s]), found %s %s", name,
                      s_a(toml_type_of(v)), toml_type_name(toml_type_of(v)));
    *out = v;
    return STM_OK;
}

/* A value of type t under key, or NULL when absent; any other type is an error. */
static stm_err s_get(const s_reader *r, const toml_value *sec, const char *section, const char *key,
                     toml_type t, const toml_value **out)
{
    *out = NULL;
    const toml_value *v = sec ? toml_table_get(sec, key) : NULL;
    if (!v)
        return STM_OK;
    if (toml_type_of(v) != t) {
        char name[128];
        return s_fail(r, v, s_name(name, sizeof name, section, key), "expected %s %s, found %s %s",
                      s_a(t), toml_type_name(t), s_a(toml_type_of(v)),
                      toml_type_name(toml_type_of(v)));
    }
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

static stm_err s_get_string(const s_reader *r, const toml_value *sec, const char *section,
                            const char *key, char **field)
{
    const toml_value *v;
    char name[128];
    stm_err rc = s_get(r, sec, section, key, TOML_STRING, &v);
    if (rc != STM_OK || !v)
        return rc;
    if ((rc = s_string_ok(r, v, s_name(name, sizeof name, section, key))) != STM_OK)
        return rc;
    config_set_str(field, toml_string(v, NULL));
    return STM_OK;
}

static stm_err s_get_endpoint(const s_reader *r, const toml_value *sec, const char *key, bool bind,
                              char **field)
{
    const toml_value *v;
    char name[128];
    s_name(name, sizeof name, "node", key);
    stm_err rc = s_get(r, sec, "node", key, TOML_STRING, &v);
    if (rc != STM_OK || !v)
        return rc;
    if ((rc = s_string_ok(r, v, name)) != STM_OK)
        return rc;
    stm_error why = {0};
    if (config_check_endpoint(toml_string(v, NULL), bind, &why) != STM_OK)
        return s_fail(r, v, name, "%s", why.msg);
    config_set_str(field, toml_string(v, NULL));
    return STM_OK;
}

static stm_err s_get_bool(const s_reader *r, const toml_value *sec, const char *section,
                          const char *key, bool *field)
{
    const toml_value *v;
    stm_err rc = s_get(r, sec, section, key, TOML_BOOL, &v);
    if (rc == STM_OK && v)
        *field = toml_bool(v);
    return rc;
}

/* An integer from min to max; *at is where it was written (NULL when absent). */
static stm_err s_get_int(const s_reader *r, const toml_value *sec, const char *section,
                         const char *key, int64_t min, int64_t max, int *field,
                         const toml_value **at)
{
    const toml_value *v;
    char name[128];
    stm_err rc = s_get(r, sec, section, key, TOML_INTEGER, &v);
    if (at)
        *at = v;
    if (rc != STM_OK || !v)
        return rc;
    int64_t i = toml_integer(v);
    s_name(name, sizeof name, section, key);
    if (i < 0)
        return s_fail(r, v, name, "must not be negative, found %lld", (long long)i);
    if (i < min)
        return s_fail(r, v, name, "must be at least %lld, found %lld", (long long)min,
                      (long long)i);
    if (i > max)
        return s_fail(r, v, name, "must be at most %lld, found %lld", (long long)max, (long long)i);
    *field = (int)i;
    return STM_OK;
}

/* An array of strings under key, or NULL when absent; at most max elements. */
static stm_err s_get_list(const s_reader *r, const toml_value *sec, const char *section,
                          const char *key, size_t max, const toml_value **out)
{
    char name[128];
    s_name(name, sizeof name, section, key);
    stm_err rc = s_get(r, sec, section, key, TOML_ARRAY, out);
    if (rc != STM_OK || !*out)
        return rc;
    if (toml_array_count(*out) > max)
        return s_fail(r, *out, name, "more than %zu entries", max);
    for (size_t i = 0; i < toml_array_count(*out); i++) {
        const toml_value *e = toml_array_at(*out, i);
        if (toml_type_of(e) != TOML_STRING)
            return s_fail(r, e, name, "expected an array of strings, found %s %s in it",
                          s_a(toml_type_of(e)), toml_type_name(toml_type_of(e)));
        if ((rc = s_string_ok(r, e, name)) != STM_OK)
            return rc;
    }
    return STM_OK;
}

static stm_err s_read_node(const s_reader *r, const toml_value *root, node_config *cfg)
{
    const toml_value *sec;
    stm_err rc = s_section(r, root, "node", &sec);
    if (rc == STM_OK)
        rc = s_get_string(r, sec, "node", "db", &cfg->db);
    if (rc == STM_OK)
        rc = s_get_string(r, sec, "node", "schemas", &cfg->schemas);
    if (rc == STM_OK)
        rc = s_get_endpoint(r, sec, "bind", true, &cfg->bind);
    if (rc == STM_OK)
        rc = s_get_endpoint(r, sec, "control", true, &cfg->control);
    /* The two settings without a default: a node is nothing without them. */
    if (rc == STM_OK && !cfg->db)
        rc = s_fail(r, sec, "node.db", "missing: the path of the application's database");
    if (rc == STM_OK && !cfg->schemas)
        rc = s_fail(r, sec, "node.schemas", "missing: the path of the schema set's directory");
    return rc;
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

/* Adds the n keys to cfg's empty list in their order, each once: sorted to find
 * repeats, where adding each with config_add_trusted compared it with all before it (n
 * squared: 26 s for the 100,000 keys a node.toml may list). keys is reordered. */
static void s_add_trusted_all(node_config *cfg, s_keyed *keys, size_t n)
{
    qsort(keys, n, sizeof *keys, s_keyed_cmp);
    bool *repeat = stm_calloc(n + 1, sizeof *repeat);
    for (size_t i = 1; i < n; i++)
        if (stm_id_equal(&keys[i - 1].key, &keys[i].key))
            repeat[keys[i].index] = true;
    stm_id *in_order = stm_calloc(n + 1, sizeof *in_order);
    for (size_t i = 0; i < n; i++)
        in_order[keys[i].index] = keys[i].key;
    cfg->trusted = stm_realloc(cfg->trusted, (cfg->ntrusted + n + 1) * sizeof *cfg->trusted);
    for (size_t i = 0; i < n; i++)
        if (!repeat[i])
            cfg->trusted[cfg->ntrusted++] = in_order[i];
    free(in_order);
    free(repeat);
}

static stm_err s_read_security(const s_reader *r, const toml_value *root, node_config *cfg)
{
    const toml_value *sec, *list;
    stm_err rc = s_section(r, root, "security", &sec);
    if (rc == STM_OK)
        rc = s_get_bool(r, sec, "security", "insecure", &cfg->insecure);
    if (rc == STM_OK)
        rc = s_get_bool(r, sec, "security", "trust_on_first_use", &cfg->trust_on_first_use);
    if (rc == STM_OK)
        rc = s_get_list(r, sec, "security", "trusted", CONFIG_MAX_TRUSTED, &list);
    size_t n = rc == STM_OK && list ? toml_array_count(list) : 0;
    s_keyed *keys = stm_calloc(n + 1, sizeof *keys);
    for (size_t i = 0; rc == STM_OK && i < n; i++) {
        const toml_value *e = toml_array_at(list, i);
        keys[i].index = i;
        if (!keys_parse(toml_string(e, NULL), &keys[i].key))
            rc = s_fail(r, e, "security.trusted",
                        "'%.100s' is not a key: expected 40 Z85 characters or 64 hex digits",
                        toml_string(e, NULL));
    }
    if (rc == STM_OK)
        s_add_trusted_all(cfg, keys, n);
    free(keys);
    return rc;
}

static stm_err s_read_peers(const s_reader *r, const toml_value *root, node_config *cfg)
{
    const toml_value *sec, *list;
    stm_err rc = s_section(r, root, "peers", &sec);
    if (rc == STM_OK)
        rc = s_get_list(r, sec, "peers", "addresses", CONFIG_MAX_PEERS, &list);
    for (size_t i = 0; rc == STM_OK && list && i < toml_array_count(list); i++) {
        const toml_value *e = toml_array_at(list, i);
        config_peer peer;
        stm_error why = {0};
        if (config_parse_peer(toml_string(e, NULL), cfg->insecure, &peer, &why) != STM_OK) {
            rc = s_fail(r, e, "peers.addresses", "%s", why.msg);
        } else {
            config_add_peer(cfg, &peer);
            config_peer_free(&peer);
        }
    }
    return rc;
}

static stm_err s_read_policy(const s_reader *r, const toml_value *root, node_config *cfg)
{
    const toml_value *sec;
    stm_err rc = s_section(r, root, "policy", &sec);
    for (int k = RELATION_SAME; rc == STM_OK && k <= RELATION_UNRELATED; k++) {
        const char *key = relation_name((relation_kind)k);
        const toml_value *v;
        char name[128];
        rc = s_get(r, sec, "policy", key, TOML_STRING, &v);
        if (rc == STM_OK && v && !config_sync_parse(toml_string(v, NULL), &cfg->policy[k]))
            rc = s_fail(r, v, s_name(name, sizeof name, "policy", key),
                        "expected \"full\", \"shared\" or \"none\", found \"%.100s\"",
                        toml_string(v, NULL));
    }
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "policy", "min_supported_version", 0, SCHEMASET_MAX_VERSIONS,
                       &cfg->min_supported_version, NULL);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "policy", "max_version_gap", 0, SCHEMASET_MAX_VERSIONS,
                       &cfg->max_version_gap, NULL);
    return rc;
}

static stm_err s_read_timing(const s_reader *r, const toml_value *root, node_config *cfg)
{
    const toml_value *sec, *heartbeat, *timeout, *rmin, *rmax;
    stm_err rc = s_section(r, root, "timing", &sec);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "timing", "heartbeat_ms", 1, CONFIG_MAX_MS, &cfg->heartbeat_ms,
                       &heartbeat);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "timing", "peer_timeout_ms", 1, CONFIG_MAX_MS, &cfg->peer_timeout_ms,
                       &timeout);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "timing", "reconnect_min_ms", 1, CONFIG_MAX_MS,
                       &cfg->reconnect_min_ms, &rmin);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "timing", "reconnect_max_ms", 1, CONFIG_MAX_MS,
                       &cfg->reconnect_max_ms, &rmax);
    /* Pairs that must agree; the message points at the one written (the later one when
     * both are). A timeout no longer than the heartbeat would drop every quiet peer. */
    if (rc == STM_OK && cfg->peer_timeout_ms <= cfg->heartbeat_ms)
        rc = s_fail(r, timeout ? timeout : heartbeat,
                    timeout ? "timing.peer_timeout_ms" : "timing.heartbeat_ms",
                    "peer_timeout_ms (%d) must be more than heartbeat_ms (%d)",
                    cfg->peer_timeout_ms, cfg->heartbeat_ms);
    if (rc == STM_OK && cfg->reconnect_min_ms > cfg->reconnect_max_ms)
        rc = s_fail(r, rmax ? rmax : rmin,
                    rmax ? "timing.reconnect_max_ms" : "timing.reconnect_min_ms",
                    "reconnect_min_ms (%d) must not be more than reconnect_max_ms (%d)",
                    cfg->reconnect_min_ms, cfg->reconnect_max_ms);
    return rc;
}

static stm_err s_read_sync(const s_reader *r, const toml_value *root, node_config *cfg)
{
    const toml_value *sec;
    stm_err rc = s_section(r, root, "sync", &sec);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "sync", "batch_ops", 1, CODEC_MAX_BATCH_OPS, &cfg->batch_ops, NULL);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "sync", "window", 1, CONFIG_MAX_WINDOW, &cfg->window, NULL);
    if (rc == STM_OK)
        rc =
            s_get_int(r, sec, "sync", "local_poll_ms", 1, CONFIG_MAX_MS, &cfg->local_poll_ms, NULL);
    if (rc == STM_OK)
        rc = s_get_int(r, sec, "sync", "busy_timeout_ms", 1, CONFIG_MAX_MS, &cfg->busy_timeout_ms,
                       NULL);
    return rc;
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
    /* [security] first: whether a peer may go without a key depends on it. */
    if (rc == STM_OK)
        rc = s_read_node(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_read_security(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_read_peers(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_read_policy(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_read_timing(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_read_sync(&r, root, cfg);
    toml_destroy(&root);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ writing node.toml */

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

static void s_put_str(buf_t *b, const char *key, const char *s)
{
    s_put(b, key, toml_new_string(s, strlen(s)));
}

/* A list of strings, one per line, so that a long list stays readable and diffs well. */
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
    }
    buf_puts(b, "]\n");
}

static const char *s_header =
    "# node.toml - the settings of a stemma node, written by 'stemma init'.\n"
    "#\n"
    "# The node reads this file when it starts and never writes it. A setting left out\n"
    "# takes the default its comment gives; settings stemma does not know are ignored.\n"
    "# Keys are CURVE public keys, written in Z85 (40 characters) or hex (64 digits).\n"
    "# docs/user-guide.md, \"Setting up a node\", tells more.\n";

static const char *const s_policy_comments[] = {
    "# same: the peer has this node's exact schema history. Default \"full\".\n",
    "# ancestor: the peer is newer (its history goes on from this node's). Default\n"
    "# \"full\".\n",
    "# descendant: this node is newer (its history goes on from the peer's). Default\n"
    "# \"full\".\n",
    "# divergent: the histories parted after a common version. Default \"shared\".\n",
    "# unrelated: no version in common (another application). Default \"none\".\n",
};

stm_err config_save(const node_config *cfg, stm_error *err)
{
    buf_t b = BUF_INIT;
    buf_puts(&b, s_header);

    buf_puts(&b, "\n[node]\n"
                 "# The application's SQLite database. A relative path is relative to this\n"
                 "# directory. No default.\n");
    s_put_str(&b, "db", cfg->db ? cfg->db : "");
    buf_puts(&b, "# The schema set: the directory of numbered migrations (NNN_description.sql).\n"
                 "# A relative path is relative to this directory. No default.\n");
    s_put_str(&b, "schemas", cfg->schemas ? cfg->schemas : "");
    buf_puts(&b, "# Where the node listens for peers: tcp://HOST:PORT (HOST * for every\n"
                 "# interface) or ipc://PATH. Default \"" CONFIG_DEFAULT_BIND "\" (this machine\n"
                 "# only).\n");
    s_put_str(&b, "bind", cfg->bind);
    buf_puts(&b, "# Where the node answers queries about itself (its peers, what syncs, what\n"
                 "# is parked): tcp://HOST:PORT or ipc://PATH. Default\n"
                 "# \"ipc://NODE_DIR/" CONFIG_CONTROL_SOCKET "\", NODE_DIR being this directory's "
                 "absolute path.\n");
    s_put_str(&b, "control", cfg->control);

    buf_puts(&b, "\n[peers]\n"
                 "# The peers this node connects to, each \"KEY@ENDPOINT\": KEY the peer's public\n"
                 "# key (its 'stemma init' prints it), ENDPOINT tcp://HOST:PORT or ipc://PATH.\n"
                 "# KEY may be left out only when security.insecure is true. Peers not listed\n"
                 "# may still connect to this node. Default: none.\n");
    char **items = stm_calloc(cfg->npeers + cfg->ntrusted + 1, sizeof *items);
    for (size_t i = 0; i < cfg->npeers; i++)
        items[i] = config_peer_format(&cfg->peers[i]);
    s_put_list(&b, "addresses", items, cfg->npeers);
    for (size_t i = 0; i < cfg->npeers; i++)
        free(items[i]);

    buf_puts(&b, "\n[security]\n"
                 "# true: plain TCP, without CURVE encryption and authentication, and any peer\n"
                 "# is accepted. For a closed test network only. Default false.\n");
    s_put(&b, "insecure", toml_new_bool(cfg->insecure));
    buf_puts(&b, "# true: a peer presenting a key that is not trusted is accepted, and its key\n"
                 "# is added to the file known_peers in this directory (trusted from then on).\n"
                 "# Default false: unknown keys are refused.\n");
    s_put(&b, "trust_on_first_use", toml_new_bool(cfg->trust_on_first_use));
    buf_puts(&b, "# The public keys a peer may present (Z85 or hex); 'stemma init' adds the keys\n"
                 "# of the peers it was given. Default: none.\n");
    for (size_t i = 0; i < cfg->ntrusted; i++) {
        items[i] = stm_malloc(KEYS_Z85_LEN + 1);
        keys_to_z85(&cfg->trusted[i], items[i]);
    }
    s_put_list(&b, "trusted", items, cfg->ntrusted);
    for (size_t i = 0; i < cfg->ntrusted; i++)
        free(items[i]);
    free(items);

    buf_puts(&b, "\n[policy]\n"
                 "# What syncs with a peer, by how its schema history relates to this node's:\n"
                 "# \"full\" (every table and column both have), \"shared\" (only the columns\n"
                 "# both have, with the same type), \"none\" (nothing; the peer is still\n"
                 "# reported).\n");
    for (int k = RELATION_SAME; k <= RELATION_UNRELATED; k++) {
        buf_puts(&b, s_policy_comments[k]);
        s_put_str(&b, relation_name((relation_kind)k), config_sync_name(cfg->policy[k]));
    }
    buf_puts(&b, "# A peer whose schema version is below this is refused, with the reason in\n"
                 "# the node's report. Default 0: no minimum.\n");
    s_put(&b, "min_supported_version", toml_new_integer(cfg->min_supported_version));
    buf_puts(&b, "# A peer more versions away than this is reported with a recommendation to\n"
                 "# resync. Default 0: no limit.\n");
    s_put(&b, "max_version_gap", toml_new_integer(cfg->max_version_gap));

    buf_puts(&b, "\n[timing]\n"
                 "# How often (milliseconds) a quiet peer is sent a heartbeat. Default 1000.\n");
    s_put(&b, "heartbeat_ms", toml_new_integer(cfg->heartbeat_ms));
    buf_puts(&b, "# How long (ms) a peer may stay silent before it is taken as gone; more\n"
                 "# than heartbeat_ms. Default 5000.\n");
    s_put(&b, "peer_timeout_ms", toml_new_integer(cfg->peer_timeout_ms));
    buf_puts(&b, "# The first wait (ms) before reconnecting to a lost peer; each failed attempt\n"
                 "# doubles it, up to reconnect_max_ms. Default 100.\n");
    s_put(&b, "reconnect_min_ms", toml_new_integer(cfg->reconnect_min_ms));
    buf_puts(&b, "# The longest wait (ms) between reconnection attempts. Default 5000.\n");
    s_put(&b, "reconnect_max_ms", toml_new_integer(cfg->reconnect_max_ms));

    buf_puts(&b, "\n[sync]\n"
                 "# Operations per batch sent to a peer. Default 2000.\n");
    s_put(&b, "batch_ops", toml_new_integer(cfg->batch_ops));
    buf_puts(&b, "# Batches in flight to one peer before waiting for it to acknowledge.\n"
                 "# Default 4.\n");
    s_put(&b, "window", toml_new_integer(cfg->window));
    buf_puts(&b, "# How often (ms) the node looks for writes to its own database. Default 200.\n");
    s_put(&b, "local_poll_ms", toml_new_integer(cfg->local_poll_ms));
    buf_puts(&b, "# How long (ms) one attempt to store received operations waits while another\n"
                 "# program holds the database's write lock; then the node answers its peers\n"
                 "# and control socket and tries again, losing nothing. Default 1000.\n");
    s_put(&b, "busy_timeout_ms", toml_new_integer(cfg->busy_timeout_ms));

    char *path = config_path(cfg->dir, CONFIG_FILE);
    stm_err rc = safefile_write(path, b.data, b.len, 0644, false, err);
    free(path);
    buf_free(&b);
    return rc;
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
