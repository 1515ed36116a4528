/* cache.c - the derived lineage and lenses of a schema set, kept in a file (cache.h). */
#include "cache.h"
#include "export.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"
#include "base/safefile.h"

#include "derive_code.h"

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The values of a cache file, in the order the digest takes them; those before K_KEYS
 * are the key. */
enum { K_FORMAT, K_CODE, K_SQLITE, K_NAME, K_DIR, K_LAYOUT, K_COUNT, K_HEAD, K_KEYS,
       K_LINEAGE = K_KEYS, K_LENSES, K_VALUES };
static const char *const s_names[K_VALUES] = {"format", "code",  "sqlite", "name",    "dir",
                                              "layout", "count", "head",   "lineage", "lenses"};

/* One value: bytes of its own, or lent. */
typedef struct {
    const void *data;
    size_t len;
} s_value;

/* The set as read now: its key values and every version's id and checksum. */
typedef struct {
    char *key[K_KEYS]; /* the key values, as text */
    stm_id *ids;       /* version i + 1's id */
    stm_id *checksums; /* and checksum */
    char *path;        /* DIR/HASH.db */
} s_set;

static void s_set_free(s_set *k)
{
    for (int i = 0; i < K_KEYS; i++)
        free(k->key[i]);
    free(k->ids);
    free(k->checksums);
    free(k->path);
}

static void s_set_read(const schemaset_t *set, const char *dir, s_set *k)
{
    size_t n = stm_schemaset_count(set);
    k->ids = stm_calloc(n + 1, sizeof *k->ids);
    k->checksums = stm_calloc(n + 1, sizeof *k->checksums);
    stm_id parent = {{0}};
    for (size_t i = 0; i < n; i++) {
        const schemaset_migration *m = stm_schemaset_at(set, i);
        stm_lineage_version_id(&parent, m->number, m->text, m->text_len, &k->ids[i]);
        stm_id_hash(m->text, m->text_len, &k->checksums[i]);
        parent = k->ids[i];
    }
    char head[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&parent, head);
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "%d", CACHE_FORMAT);
    k->key[K_FORMAT] = stm_buf_detach(&b);
    k->key[K_CODE] = stm_strdup(STM_DERIVE_CODE);
    k->key[K_SQLITE] = stm_strdup(sqlite3_sourceid());
    k->key[K_NAME] = stm_strdup(stm_schemaset_name(set));
    /* Messages in the lenses name the files by the directory as given. */
    k->key[K_DIR] = stm_strdup(stm_schemaset_dir(set));
    /* ... and by the names its layout gives them. */
    k->key[K_LAYOUT] = stm_strdup(stm_layout_name(stm_schemaset_layout(set)));
    stm_buf_printf(&b, "%zu", n);
    k->key[K_COUNT] = stm_buf_detach(&b);
    k->key[K_HEAD] = stm_strdup(head);
    stm_hasher h;
    stm_hasher_init(&h);
    for (int i = 0; i < K_KEYS; i++) {
        stm_hasher_u64(&h, strlen(k->key[i]));
        stm_hasher_str(&h, k->key[i]);
    }
    stm_id name;
    stm_hasher_final(&h, &name);
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&name, hex);
    stm_buf_printf(&b, "%s/%.32s.db", dir, hex);
    k->path = stm_buf_detach(&b);
}

/* BLAKE2b-256 over the values, each after its length, as hex. */
static void s_digest(const s_value *v, char out[STM_ID_HEX_LEN + 1])
{
    stm_hasher h;
    stm_hasher_init(&h);
    for (int i = 0; i < K_VALUES; i++) {
        stm_hasher_u64(&h, v[i].len);
        stm_hasher_update(&h, v[i].data, v[i].len);
    }
    stm_id id;
    stm_hasher_final(&h, &id);
    stm_id_to_hex(&id, out);
}

/* ---- reading ---- */

/* Checks the lineage read back against the set, version by version (invariant 1). */
static bool s_same_versions(const lineage_t *l, const schemaset_t *set, const s_set *k)
{
    if (stm_lineage_count(l) != stm_schemaset_count(set))
        return false;
    for (size_t i = 0; i < stm_lineage_count(l); i++) {
        const lineage_version *v = stm_lineage_version_at(l, i);
        const char *d = stm_schemaset_at(set, i)->description;
        if (!stm_id_equal(&v->id, &k->ids[i]) || !stm_id_equal(&v->checksum, &k->checksums[i]) ||
            strcmp(v->description ? v->description : "", d ? d : "") != 0)
            return false;
    }
    return true;
}

/* Reads the values of the cache file db into v (lent by db's statement... copied into
 * own). Returns NULL, or why the file cannot be used. */
static const char *s_read_values(sqlite3 *db, char *own[K_VALUES + 1], size_t len[K_VALUES + 1])
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT key, value FROM cache", -1, &st, NULL) != SQLITE_OK)
        return sqlite3_errmsg(db);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; key && i <= K_VALUES; i++) {
            const char *name = i < K_VALUES ? s_names[i] : "digest";
            if (strcmp(key, name) != 0 || own[i])
                continue;
            const void *data = sqlite3_column_blob(st, 1);
            len[i] = (size_t)sqlite3_column_bytes(st, 1);
            own[i] = stm_malloc(len[i] + 1);
            if (len[i])
                memcpy(own[i], data, len[i]);
            own[i][len[i]] = '\0';
        }
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return sqlite3_errmsg(db);
    for (int i = 0; i <= K_VALUES; i++)
        if (!own[i])
            return "a value is missing";
    return NULL;
}

/* Reads the cache file for k: true with what was asked when it answers for the set;
 * false when it is missing (report->warning "") or unusable (the warning says why). */
static bool s_read(const schemaset_t *set, const s_set *k, lineage_t **lineage,
                   lens_set_t **lenses, cache_report *report)
{
    char *data = NULL;
    size_t size = 0;
    stm_error e = {0};
    if (stm_readfile_all(k->path, CACHE_MAX_BYTES, &data, &size, &e) != STM_OK) {
        if (errno != ENOENT)
            snprintf(report->warning, sizeof report->warning,
                     "%.900s; the schema set was derived again", e.msg);
        return false;
    }
    const char *why = NULL;
    char *own[K_VALUES + 1] = {0};
    size_t len[K_VALUES + 1] = {0};
    lineage_t *l = NULL;
    lens_set_t *s = NULL;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_deserialize(db, "main", (unsigned char *)data, (sqlite3_int64)size,
                            (sqlite3_int64)size, SQLITE_DESERIALIZE_READONLY) != SQLITE_OK)
        why = "cannot be opened";
    else
        why = s_read_values(db, own, len);
    s_value v[K_VALUES];
    for (int i = 0; !why && i < K_VALUES; i++)
        v[i] = (s_value){own[i], len[i]};
    char digest[STM_ID_HEX_LEN + 1];
    if (!why) {
        s_digest(v, digest);
        if (strcmp(digest, own[K_VALUES]) != 0)
            why = "damaged (its digest does not match what it holds)";
    }
    /* The name is a hash of the key: another key here is a file put in another's
     * place, not a stale one. */
    for (int i = 0; !why && i < K_KEYS; i++)
        if (strcmp(own[i], k->key[i]) != 0)
            why = "made for another schema set or stemma";
    if (!why && lineage &&
        (stm_export_parse(own[K_LINEAGE], len[K_LINEAGE], k->path, &l, &e) != STM_OK ||
         !s_same_versions(l, set, k)))
        why = l ? "its lineage is not the schema set's" : e.msg;
    if (!why && lenses &&
        stm_lens_decode(own[K_LENSES], len[K_LENSES], stm_schemaset_count(set), &s, &e) !=
            STM_OK)
        why = e.msg;
    if (why)
        snprintf(report->warning, sizeof report->warning,
                 "%.400s: %.500s; the schema set was derived again", k->path, why);
    sqlite3_close(db); /* after why: it may be SQLite's message */
    for (int i = 0; i <= K_VALUES; i++)
        free(own[i]);
    free(data);
    if (why) {
        stm_lineage_destroy(&l);
        stm_lens_destroy(&s);
        return false;
    }
    if (lineage)
        *lineage = l;
    if (lenses)
        *lenses = s;
    return true;
}

/* ---- writing ---- */

/* Makes dir and its parents (0700, as a cache should be); true when it is there and
 * writable. */
static bool s_dir_ready(const char *dir)
{
    char *path = stm_strdup(dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    mkdir(path, 0700);
    bool ok = access(path, W_OK | X_OK) == 0;
    free(path);
    return ok;
}

typedef struct {
    char *name;
    struct timespec at;
} s_file;

static int s_older(const void *a, const void *b)
{
    const struct timespec *x = &((const s_file *)a)->at, *y = &((const s_file *)b)->at;
    return x->tv_sec != y->tv_sec ? (x->tv_sec < y->tv_sec ? -1 : 1)
                                  : (x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec);
}

/* Leaves at most CACHE_MAX_FILES cache files in dir, the newest: files named as this
 * module names them (32 hex digits, ".db"), nothing else. */
static void s_prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    s_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 35 || strspn(e->d_name, "0123456789abcdef") != 32 ||
            strcmp(e->d_name + 32, ".db") != 0)
            continue;
        buf_t p = BUF_INIT;
        stm_buf_printf(&p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(stm_buf_str(&p), &st) == 0) {
            files = stm_grow(files, &cap, n + 1, sizeof *files);
            files[n++] = (s_file){stm_buf_detach(&p), st.st_mtim};
        }
        stm_buf_free(&p);
    }
    closedir(d);
    if (n > CACHE_MAX_FILES) {
        qsort(files, n, sizeof *files, s_older);
        for (size_t i = 0; i < n - CACHE_MAX_FILES; i++)
            unlink(files[i].name);
    }
    for (size_t i = 0; i < n; i++)
        free(files[i].name);
    free(files);
}

/* Writes the cache file for k; true when it is in place. */
static bool s_write(const char *dir, const s_set *k, const lineage_t *l, const lens_set_t *s)
{
    char *toml = stm_export_lineage(l);
    buf_t lens = BUF_INIT;
    stm_lens_encode(s, &lens);
    s_value v[K_VALUES];
    for (int i = 0; i < K_KEYS; i++)
        v[i] = (s_value){k->key[i], strlen(k->key[i])};
    v[K_LINEAGE] = (s_value){toml, strlen(toml)};
    v[K_LENSES] = (s_value){lens.data ? lens.data : "", lens.len};
    char digest[STM_ID_HEX_LEN + 1];
    s_digest(v, digest);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
              sqlite3_exec(db, "CREATE TABLE cache (key TEXT PRIMARY KEY, value)", NULL, NULL,
                           NULL) == SQLITE_OK &&
              sqlite3_prepare_v2(db, "INSERT INTO cache VALUES (?1, ?2)", -1, &st, NULL) ==
                  SQLITE_OK;
    for (int i = 0; ok && i <= K_VALUES; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, i < K_VALUES ? s_names[i] : "digest", -1, SQLITE_STATIC);
        /* The key values and the lineage as text, for a person who opens the file. */
        if (i == K_LENSES)
            sqlite3_bind_blob(st, 2, v[i].data, (int)v[i].len, SQLITE_STATIC);
        else if (i < K_VALUES)
            sqlite3_bind_text(st, 2, v[i].data, (int)v[i].len, SQLITE_STATIC);
        else
            sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    sqlite3_int64 size = 0;
    unsigned char *bytes = ok ? sqlite3_serialize(db, "main", &size, 0) : NULL;
    stm_error e = {0};
    ok = bytes && stm_safefile_write(k->path, bytes, (size_t)size, 0600, false, &e) == STM_OK;
    sqlite3_free(bytes);
    sqlite3_close(db);
    free(toml);
    stm_buf_free(&lens);
    if (ok)
        s_prune(dir);
    return ok;
}

/* ---- the one call ---- */

char *stm_cache_dir_from_env(void)
{
    const char *off = getenv("STEMMA_NO_CACHE");
    if (off && *off && strcmp(off, "0") != 0)
        return NULL;
    const char *dir = getenv("STEMMA_CACHE_DIR");
    if (dir && *dir)
        return stm_strdup(dir);
    buf_t b = BUF_INIT;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') /* the XDG spec: a relative path is to be ignored */
        stm_buf_printf(&b, "%s/stemma", xdg);
    else if (home && home[0] == '/')
        stm_buf_printf(&b, "%s/.cache/stemma", home);
    else
        return NULL;
    return stm_buf_detach(&b);
}

stm_err stm_cache_derive(const schemaset_t *set, const char *dir, lineage_t **lineage,
                         lens_set_t **lenses, cache_report *report, stm_error *err)
{
    cache_report local;
    cache_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    s_set k = {0};
    if (dir) {
        s_set_read(set, dir, &k);
        if (s_read(set, &k, lineage, lenses, r)) {
            r->hit = true;
            s_set_free(&k);
            return STM_OK;
        }
    }
    /* Derived whole when it is to be written, else only what was asked. */
    bool write = dir && s_dir_ready(dir);
    lineage_t *l = NULL;
    lens_set_t *s = NULL;
    stm_err rc = STM_OK;
    if (lineage || write)
        rc = stm_lineage_build(set, &l, err);
    if (rc == STM_OK && (lenses || write)) {
        stm_error lens_err = {0};
        stm_err lrc = stm_lens_derive(set, &s, lenses ? err : &lens_err);
        if (lenses)
            rc = lrc;
        write = write && lrc == STM_OK;
    }
    if (rc == STM_OK && write)
        r->written = s_write(dir, &k, l, s);
    s_set_free(&k);
    if (rc != STM_OK) {
        stm_lineage_destroy(&l);
        stm_lens_destroy(&s);
        return rc;
    }
    if (lineage)
        *lineage = l;
    else
        stm_lineage_destroy(&l);
    if (lenses)
        *lenses = s;
    else
        stm_lens_destroy(&s);
    return STM_OK;
}
