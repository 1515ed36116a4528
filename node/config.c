/* config.c - node.toml read, from the table of settings (config.h); config_write.c
 * writes it.
 *
 * Nothing here names a setting: every loop walks the rows of settings.h. stm_config_init
 * takes the rows' defaults; stm_config_load first walks the file's names against the table
 * (a name it does not have is refused, with the nearest one it does), then reads each
 * row (its type, then its value), then the settings without a default and the pairs
 * that must agree, and reports the first problem found at the line and column of the
 * value at fault. The "KEY@ENDPOINT" peers [peers] holds are parsed and formatted here
 * too. */
#include "config.h"
#include "endpoint.h"
#include "settings.h"

#include "base/buf.h"
#include "base/mem.h"
#include "lineage/layout.h"
#include "toml/toml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the struct */

char *stm_config_absolute(const char *path)
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
        stm_buf_puts(&b, cwd);
    else
        stm_buf_printf(&b, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
    return stm_buf_detach(&b);
}

void stm_config_init(node_config *cfg, const char *dir)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dir = stm_strdup(dir);
    char *abs = stm_config_absolute(dir);
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/')
        abs[--n] = '\0';
    for (size_t i = 0; i < stm_settings_nrows; i++)
        stm_settings_set_default(cfg, &stm_settings_rows[i], abs);
    free(abs);
}

void stm_config_policy_default(peer_policy *p)
{
    node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    size_t from = offsetof(node_config, policy), to = from + sizeof cfg.policy;
    for (size_t i = 0; i < stm_settings_nrows; i++)
        if (stm_settings_rows[i].field >= from && stm_settings_rows[i].field < to)
            stm_settings_set_default(&cfg, &stm_settings_rows[i], NULL);
    *p = cfg.policy;
}

void stm_config_peer_free(config_peer *peer)
{
    free(peer->endpoint);
    peer->endpoint = NULL;
}

void stm_config_destroy(node_config *cfg)
{
    free(cfg->dir);
    for (size_t i = 0; i < stm_settings_nrows; i++) {
        const settings_row *s = &stm_settings_rows[i];
        if (s->type == SETTINGS_PATH || s->type == SETTINGS_ENDPOINT || s->type == SETTINGS_BIND ||
            s->type == SETTINGS_DIAL || s->type == SETTINGS_NAME || s->type == SETTINGS_IPV4 ||
            s->type == SETTINGS_LAYOUT) {
            free(*(char **)stm_settings_field(cfg, s, sizeof(char *)));
        } else if (s->type == SETTINGS_PEERS) {
            config_peer *peers = *(config_peer **)stm_settings_field(cfg, s, sizeof(config_peer *));
            for (size_t j = 0; j < *stm_settings_length(cfg, s); j++)
                stm_config_peer_free(&peers[j]);
            free(peers);
        } else if (s->type == SETTINGS_KEYS) {
            free(*(stm_id **)stm_settings_field(cfg, s, sizeof(stm_id *)));
        }
    }
    memset(cfg, 0, sizeof *cfg);
}

void stm_config_set_str(char **field, const char *value)
{
    char *copy = value ? stm_strdup(value) : NULL;
    free(*field);
    *field = copy;
}

void stm_config_add_trusted(node_config *cfg, const stm_id *key)
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

void stm_config_add_peer(node_config *cfg, const config_peer *peer)
{
    s_push_peer(&cfg->peers, &cfg->npeers, peer);
}

char *stm_config_path(const char *dir, const char *name)
{
    buf_t b = BUF_INIT;
    size_t n = strlen(dir);
    stm_buf_printf(&b, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name);
    return stm_buf_detach(&b);
}

char *stm_config_resolve(const node_config *cfg, const char *path)
{
    return path[0] == '/' ? stm_strdup(path) : stm_config_path(cfg->dir, path);
}

/* ------------------------------------------------------------------ peers */

stm_err stm_config_parse_peer(const char *text, bool insecure, config_peer *out, stm_error *err)
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
        if (!stm_keys_parse(key, &out->key))
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
    stm_err rc = stm_endpoint_check(endpoint, false, err);
    if (rc != STM_OK)
        return rc;
    out->endpoint = stm_strdup(endpoint);
    return STM_OK;
}

char *stm_config_peer_format(const config_peer *peer)
{
    buf_t b = BUF_INIT;
    if (peer->has_key) {
        char z85[KEYS_Z85_LEN + 1];
        stm_keys_to_z85(&peer->key, z85);
        stm_buf_printf(&b, "%s@", z85);
    }
    stm_buf_puts(&b, peer->endpoint);
    return stm_buf_detach(&b);
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
    if (v && stm_toml_line(v) > 0)
        return stm_error_set(r->err, STM_EINPUT, "%s:%d:%d: %s: %s", r->path, stm_toml_line(v),
                             stm_toml_column(v), name, what);
    return stm_error_set(r->err, STM_EINPUT, "%s: %s: %s", r->path, name, what);
}

static const char *s_a(toml_type t)
{
    return t == TOML_ARRAY || t == TOML_INTEGER ? "an" : "a";
}

/* Every section the table knows is a table in the file, when it is there at all. */
static stm_err s_check_sections(const s_reader *r, const toml_value *root)
{
    for (size_t i = 0; i < stm_settings_nsections; i++) {
        const char *name = stm_settings_sections[i].name;
        const toml_value *sec = stm_toml_table_get(root, name);
        if (sec && stm_toml_type_of(sec) != TOML_TABLE)
            return s_fail(r, sec, name, "expected a table ([%s]), found %s %s", name,
                          s_a(stm_toml_type_of(sec)), stm_toml_type_name(stm_toml_type_of(sec)));
    }
    return STM_OK;
}

/* ---- the rows */

/* Where messages about row s say it is: "section.key". */
static const char *s_name(const settings_row *s, char out[128])
{
    snprintf(out, 128, "%s.%s", s->section, s->key);
    return out;
}

/* The value of row s in the file, or NULL when it is absent (it keeps its default); a
 * value of another TOML type than the row's is refused. */
static stm_err s_value(const s_reader *r, const toml_value *root, const settings_row *s,
                       const toml_value **out)
{
    static const toml_type types[] = {
        [SETTINGS_PATH] = TOML_STRING, [SETTINGS_ENDPOINT] = TOML_STRING,
        [SETTINGS_BIND] = TOML_STRING, [SETTINGS_DIAL] = TOML_STRING,
        [SETTINGS_NAME] = TOML_STRING, [SETTINGS_IPV4] = TOML_STRING,
        [SETTINGS_LAYOUT] = TOML_STRING, [SETTINGS_BOOL] = TOML_BOOL,
        [SETTINGS_INT] = TOML_INTEGER, [SETTINGS_WORD] = TOML_STRING,
        [SETTINGS_PEERS] = TOML_ARRAY, [SETTINGS_KEYS] = TOML_ARRAY,
    };
    const toml_value *sec = stm_toml_table_get(root, s->section);
    const toml_value *v = sec ? stm_toml_table_get(sec, s->key) : NULL;
    toml_type t = types[s->type];
    char name[128];
    *out = NULL;
    if (v && stm_toml_type_of(v) != t)
        return s_fail(r, v, s_name(s, name), "expected %s %s, found %s %s", s_a(t),
                      stm_toml_type_name(t), s_a(stm_toml_type_of(v)),
                      stm_toml_type_name(stm_toml_type_of(v)));
    *out = v;
    return STM_OK;
}

/* A string without NUL characters (which no path or endpoint can hold). */
static stm_err s_string_ok(const s_reader *r, const toml_value *v, const char *name)
{
    size_t len;
    const char *s = stm_toml_string(v, &len);
    if (strlen(s) != len)
        return s_fail(r, v, name, "holds a NUL character");
    if (len == 0)
        return s_fail(r, v, name, "must not be empty");
    return STM_OK;
}

/* A name for people: it ends up in peers' reports and logs, so short and without
 * control characters (which would let it forge log lines there). */
static stm_err s_name_ok(const s_reader *r, const toml_value *v, const char *name)
{
    size_t len;
    const char *s = stm_toml_string(v, &len);
    if (len > CONFIG_MAX_NAME)
        return s_fail(r, v, name, "is %zu bytes long; at most %d", len, CONFIG_MAX_NAME);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return s_fail(r, v, name, "holds a control character (byte 0x%02x)",
                          (unsigned)(unsigned char)s[i]);
    return STM_OK;
}

/* An endpoint peers can dial, or "" for none: a wildcard host would send them to
 * their own machine. */
static stm_err s_dial_ok(const s_reader *r, const toml_value *v, const char *name)
{
    size_t len;
    const char *s = stm_toml_string(v, &len);
    stm_error why = {0};
    if (strlen(s) != len)
        return s_fail(r, v, name, "holds a NUL character");
    if (len == 0)
        return STM_OK;
    if (stm_endpoint_check(s, false, &why) != STM_OK)
        return s_fail(r, v, name, "%s", why.msg);
    if (stm_endpoint_is_wildcard(s))
        return s_fail(r, v, name,
                      "'%.200s' is a wildcard address: peers dialling it reach their own "
                      "machine; give an address they can reach this node at",
                      s);
    return STM_OK;
}

/* An IPv4 address as inet_pton reads it: four decimal numbers 0 to 255, dotted. */
static stm_err s_ipv4_ok(const s_reader *r, const toml_value *v, const char *name)
{
    size_t len;
    const char *s = stm_toml_string(v, &len);
    struct in_addr addr;
    if (strlen(s) != len)
        return s_fail(r, v, name, "holds a NUL character");
    if (inet_pton(AF_INET, s, &addr) != 1)
        return s_fail(r, v, name,
                      "'%.100s' is not an IPv4 address: expected four numbers 0 to 255 "
                      "with dots between, such as 255.255.255.255 or 192.168.1.255",
                      s);
    return STM_OK;
}

/* An array of at most s->max non-empty strings. */
static stm_err s_list_ok(const s_reader *r, const toml_value *list, const settings_row *s,
                         const char *name)
{
    if (stm_toml_array_count(list) > (size_t)s->max)
        return s_fail(r, list, name, "more than %lld entries", (long long)s->max);
    for (size_t i = 0; i < stm_toml_array_count(list); i++) {
        const toml_value *e = stm_toml_array_at(list, i);
        stm_err rc;
        if (stm_toml_type_of(e) != TOML_STRING)
            return s_fail(r, e, name, "expected an array of strings, found %s %s in it",
                          s_a(stm_toml_type_of(e)), stm_toml_type_name(stm_toml_type_of(e)));
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
 * to find repeats, where adding each with stm_config_add_trusted compared it with all
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

static stm_err s_read_keys(const s_reader *r, const toml_value *list, const settings_row *s,
                           const char *name, node_config *cfg)
{
    size_t n = stm_toml_array_count(list);
    s_keyed *keys = stm_calloc(n + 1, sizeof *keys);
    stm_err rc = STM_OK;
    for (size_t i = 0; rc == STM_OK && i < n; i++) {
        const toml_value *e = stm_toml_array_at(list, i);
        keys[i].index = i;
        if (!stm_keys_parse(stm_toml_string(e, NULL), &keys[i].key))
            rc = s_fail(r, e, name,
                        "'%.100s' is not a key: expected 40 Z85 characters or 64 hex digits",
                        stm_toml_string(e, NULL));
    }
    if (rc == STM_OK)
        s_add_keys_once(stm_settings_field(cfg, s, sizeof(stm_id *)), stm_settings_length(cfg, s),
                        keys, n);
    free(keys);
    return rc;
}

static stm_err s_read_peers(const s_reader *r, const toml_value *list, const settings_row *s,
                            const char *name, node_config *cfg)
{
    for (size_t i = 0; i < stm_toml_array_count(list); i++) {
        const toml_value *e = stm_toml_array_at(list, i);
        config_peer peer;
        stm_error why = {0};
        if (stm_config_parse_peer(stm_toml_string(e, NULL), cfg->insecure, &peer, &why) != STM_OK)
            return s_fail(r, e, name, "%s", why.msg);
        s_push_peer(stm_settings_field(cfg, s, sizeof(config_peer *)), stm_settings_length(cfg, s),
                    &peer);
        stm_config_peer_free(&peer);
    }
    return STM_OK;
}

static stm_err s_read_int(const s_reader *r, const toml_value *v, const settings_row *s,
                          const char *name, node_config *cfg)
{
    int64_t i = stm_toml_integer(v);
    if (i < 0)
        return s_fail(r, v, name, "must not be negative, found %lld", (long long)i);
    if (i < s->min)
        return s_fail(r, v, name, "must be at least %lld, found %lld", (long long)s->min,
                      (long long)i);
    if (i > s->max)
        return s_fail(r, v, name, "must be at most %lld, found %lld", (long long)s->max,
                      (long long)i);
    *(int *)stm_settings_field(cfg, s, sizeof(int)) = (int)i;
    return STM_OK;
}

static stm_err s_read_word(const s_reader *r, const toml_value *v, const settings_row *s,
                           const char *name, node_config *cfg)
{
    const char *word = stm_toml_string(v, NULL);
    for (size_t m = 0; m < s->nwords; m++) {
        if (strcmp(word, s->words[m]) == 0) {
            *(int *)stm_settings_field(cfg, s, sizeof(int)) = (int)m;
            return STM_OK;
        }
    }
    buf_t allowed = BUF_INIT;
    stm_settings_put_type(&allowed, s, false);
    stm_err rc = s_fail(r, v, name, "expected %s, found \"%.100s\"", stm_buf_str(&allowed), word);
    stm_buf_free(&allowed);
    return rc;
}

/* Reads row s from the file into cfg, when the file has it. */
static stm_err s_read(const s_reader *r, const toml_value *root, const settings_row *s,
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
    case SETTINGS_PATH:
    case SETTINGS_ENDPOINT:
    case SETTINGS_BIND: {
        size_t len;
        bool none = s->type == SETTINGS_BIND && stm_toml_string(v, &len) && len == 0; /* binds nowhere */
        if (!none && (rc = s_string_ok(r, v, name)) != STM_OK)
            return rc;
        if (s->type != SETTINGS_PATH && !none &&
            stm_endpoint_check(stm_toml_string(v, NULL), true, &why) != STM_OK)
            return s_fail(r, v, name, "%s", why.msg);
        stm_config_set_str(stm_settings_field(cfg, s, sizeof(char *)), stm_toml_string(v, NULL));
        return STM_OK;
    }
    case SETTINGS_NAME:
        if ((rc = s_name_ok(r, v, name)) != STM_OK)
            return rc;
        stm_config_set_str(stm_settings_field(cfg, s, sizeof(char *)), stm_toml_string(v, NULL));
        return STM_OK;
    case SETTINGS_DIAL:
        if ((rc = s_dial_ok(r, v, name)) != STM_OK)
            return rc;
        stm_config_set_str(stm_settings_field(cfg, s, sizeof(char *)), stm_toml_string(v, NULL));
        return STM_OK;
    case SETTINGS_IPV4:
        if ((rc = s_ipv4_ok(r, v, name)) != STM_OK)
            return rc;
        stm_config_set_str(stm_settings_field(cfg, s, sizeof(char *)), stm_toml_string(v, NULL));
        return STM_OK;
    case SETTINGS_LAYOUT: {
        schemaset_layout layout;
        if (!stm_layout_from_name(stm_toml_string(v, NULL), &layout))
            return s_fail(r, v, name,
                          "expected \"auto\" or one of " LAYOUT_NAMES ", found \"%.100s\"",
                          stm_toml_string(v, NULL));
        stm_config_set_str(stm_settings_field(cfg, s, sizeof(char *)), stm_toml_string(v, NULL));
        return STM_OK;
    }
    case SETTINGS_BOOL:
        *(bool *)stm_settings_field(cfg, s, sizeof(bool)) = stm_toml_bool(v);
        return STM_OK;
    case SETTINGS_INT:
        return s_read_int(r, v, s, name, cfg);
    case SETTINGS_WORD:
        return s_read_word(r, v, s, name, cfg);
    case SETTINGS_PEERS:
    case SETTINGS_KEYS:
        if ((rc = s_list_ok(r, v, s, name)) != STM_OK)
            return rc;
        return s->type == SETTINGS_PEERS ? s_read_peers(r, v, s, name, cfg)
                                         : s_read_keys(r, v, s, name, cfg);
    }
    return STM_OK;
}

/* A setting without a default must be in the file: a node is nothing without it. */
static stm_err s_check_required(const s_reader *r, const toml_value *root, const node_config *cfg)
{
    char name[128];
    for (size_t i = 0; i < stm_settings_nrows; i++) {
        const settings_row *s = &stm_settings_rows[i];
        if ((s->type == SETTINGS_PATH || s->type == SETTINGS_ENDPOINT || s->type == SETTINGS_BIND ||
             s->type == SETTINGS_DIAL || s->type == SETTINGS_NAME || s->type == SETTINGS_IPV4 ||
             s->type == SETTINGS_LAYOUT) &&
            !s->text && !*(char **)stm_settings_field(cfg, s, sizeof(char *)))
            return s_fail(r, stm_toml_table_get(root, s->section), s_name(s, name), "missing: %s",
                          s->doc);
    }
    return STM_OK;
}

/* The pairs of stm_settings_rules agree; the message points at the upper one when the file has
 * it, else at the lower. */
static stm_err s_check_rules(const s_reader *r, const toml_value *root, const node_config *cfg)
{
    for (size_t i = 0; i < stm_settings_nrules; i++) {
        const char *sec = stm_settings_rules[i].section;
        const settings_row *lo = stm_settings_find(sec, stm_settings_rules[i].lower,
                                                   strlen(stm_settings_rules[i].lower));
        const settings_row *hi = stm_settings_find(sec, stm_settings_rules[i].upper,
                                                   strlen(stm_settings_rules[i].upper));
        int a = *(int *)stm_settings_field(cfg, lo, sizeof(int)),
            b = *(int *)stm_settings_field(cfg, hi, sizeof(int));
        if (stm_settings_rules[i].strict ? a < b : a <= b)
            continue;
        const toml_value *at;
        char name[128];
        stm_err rc = s_value(r, root, hi, &at);
        const settings_row *blamed = at ? hi : lo;
        if (rc == STM_OK && !at)
            rc = s_value(r, root, lo, &at);
        if (rc != STM_OK)
            return rc;
        if (stm_settings_rules[i].strict)
            return s_fail(r, at, s_name(blamed, name), "%s (%d) must be more than %s (%d)", hi->key,
                          b, lo->key, a);
        return s_fail(r, at, s_name(blamed, name), "%s (%d) must not be more than %s (%d)", lo->key,
                      a, hi->key, b);
    }
    return STM_OK;
}

stm_err stm_config_load(const char *dir, node_config *cfg, stm_error *err)
{
    stm_config_init(cfg, dir);
    char *path = stm_config_path(dir, CONFIG_FILE);
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
    rc = stm_toml_parse_file(path, &root, err);
    s_reader r = {path, err};
    if (rc == STM_OK)
        rc = stm_settings_check_names(root, path, err);
    if (rc == STM_OK)
        rc = s_check_sections(&r, root);
    /* Peers last: whether one may go without a key depends on security.insecure. */
    for (int peers = 0; peers < 2; peers++)
        for (size_t i = 0; rc == STM_OK && i < stm_settings_nrows; i++)
            if ((stm_settings_rows[i].type == SETTINGS_PEERS) == peers)
                rc = s_read(&r, root, &stm_settings_rows[i], cfg);
    if (rc == STM_OK)
        rc = s_check_required(&r, root, cfg);
    if (rc == STM_OK)
        rc = s_check_rules(&r, root, cfg);
    stm_toml_destroy(&root);
    free(path);
    return rc;
}
