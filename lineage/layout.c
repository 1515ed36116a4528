/* layout.c - other migration tools' directory layouts: names, order, detection
 * (layout.h). */
#include "layout.h"
#include "schemaset.h"
#include "sections.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const s_names[LAYOUT_COUNT] = {
    [LAYOUT_AUTO] = "auto",     [LAYOUT_STEMMA] = "stemma",
    [LAYOUT_FLYWAY] = "flyway", [LAYOUT_DIESEL] = "diesel",
    [LAYOUT_SQLX] = "sqlx",     [LAYOUT_DBMATE] = "dbmate",
    [LAYOUT_GOOSE] = "goose",   [LAYOUT_GOLANG_MIGRATE] = "golang-migrate",
};

const char *stm_layout_name(schemaset_layout layout)
{
    return (unsigned)layout < LAYOUT_COUNT ? s_names[layout] : "?";
}

bool stm_layout_from_name(const char *name, schemaset_layout *out)
{
    for (int i = 0; i < LAYOUT_COUNT; i++) {
        if (strcmp(name, s_names[i]) == 0) {
            *out = (schemaset_layout)i;
            return true;
        }
    }
    return false;
}

/* ---- versions ---- */

/* Two decimal numbers of any length: leading zeros do not count. */
static int s_compare_number(const char *a, size_t na, const char *b, size_t nb)
{
    for (; na > 0 && *a == '0'; na--)
        a++;
    for (; nb > 0 && *b == '0'; nb--)
        b++;
    if (na != nb)
        return na < nb ? -1 : 1;
    int c = memcmp(a, b, na);
    return (c > 0) - (c < 0);
}

int stm_layout_compare(schemaset_layout layout, const char *a, const char *b)
{
    /* Diesel keeps a version as text and sorts it so (2024-01-15-120000 is 20240115120000). */
    if (layout == LAYOUT_DIESEL) {
        int c = strcmp(a, b);
        return (c > 0) - (c < 0);
    }
    /* Part by part, a missing part counting as 0, so that Flyway's 1.0 is 1; every
     * other layout's keys are one part. */
    for (;;) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        int c = s_compare_number(a, na, b, nb);
        if (c)
            return c;
        a += na;
        b += nb;
        if (!*a && !*b)
            return 0;
        a += *a == '.';
        b += *b == '.';
    }
}

/* ---- names ---- */

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* The leading digits of a "<digits>_words" name: their count, 0 when it is not one. */
static size_t s_numbered(const char *name)
{
    size_t n = strspn(name, "0123456789");
    return n > 0 && name[n] == '_' ? n : 0;
}

/* The version of a Flyway name after its prefix letter: digits in groups joined by
 * single '.' or '_', then "__". Its length, 0 when it is not one. */
static size_t s_flyway_version(const char *p)
{
    const char *sep = strstr(p, "__");
    if (!sep || sep == p)
        return 0;
    for (const char *q = p; q < sep; q++) {
        bool digit = isdigit((unsigned char)*q);
        if (!digit && (*q != '.' && *q != '_'))
            return 0;
        if (!digit && (q == p || q + 1 == sep || !isdigit((unsigned char)q[1])))
            return 0;
    }
    return (size_t)(sep - p);
}

/* A name Flyway reads as a migration, whatever its language: V or U and a version, or
 * R (repeatable), then "__". */
static bool s_flyway_like(const char *name)
{
    return ((name[0] == 'V' || name[0] == 'U') && s_flyway_version(name + 1)) ||
           strncmp(name, "R__", 3) == 0;
}

/* A Diesel migration directory's name: a version of digits and '-' (a digit first),
 * '_', words. The version's length, 0 when it is not one. */
static size_t s_diesel_version(const char *name)
{
    size_t n = strspn(name, "0123456789-");
    return n > 0 && isdigit((unsigned char)name[0]) && name[n] == '_' ? n : 0;
}

/* Whether dir/name is there and of type (S_IFDIR, S_IFREG), links followed. */
static bool s_is(const char *dir, const char *name, mode_t type)
{
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", dir, name);
    struct stat st;
    bool is = stat(stm_buf_str(&path), &st) == 0 && (st.st_mode & S_IFMT) == type;
    stm_buf_free(&path);
    return is;
}

/* ---- listing ---- */

/* A listing under way. */
typedef struct {
    const char *dir;         /* as given */
    schemaset_layout layout; /* the layout the names are read in */
    layout_entry *v;         /* what was found so far */
    size_t n, cap;           /* entries in v, and room for */
    size_t migrations;       /* UP and BOTH entries in v */
    stm_error *err;          /* where a refusal is told */
} s_list;

/* Adds an entry; file and the rest are copied, but key and down_where (may be NULL)
 * are taken. */
static stm_err s_push(s_list *l, const char *file, const char *version, size_t version_len,
                      char *key, const char *words, size_t words_len, char *down_where,
                      layout_part part)
{
    if (part != LAYOUT_PART_DOWN && ++l->migrations > SCHEMASET_MAX_VERSIONS) {
        free(key);
        free(down_where);
        return stm_error_set(l->err, STM_EINPUT, "%s: more than %d migrations", l->dir,
                             SCHEMASET_MAX_VERSIONS);
    }
    l->v = stm_grow(l->v, &l->cap, l->n + 1, sizeof *l->v);
    l->v[l->n++] = (layout_entry){.file = stm_strdup(file),
                                  .version = stm_strndup(version, version_len),
                                  .key = key,
                                  .words = stm_strndup(words, words_len),
                                  .down_where = down_where,
                                  .part = part,
                                  .layout = l->layout};
    return STM_OK;
}

/* stemma's own: NNN_words.sql and NNN_words.down.sql, NNN from 0 to the limit
 * (schemaset.c says what is wrong with 0 and gaps), '-' allowed for '_'. Names only: a
 * directory named like a migration is one that cannot be read. */
static stm_err s_stemma(s_list *l, const char *name)
{
    if (!s_ends_with(name, ".sql"))
        return STM_OK;
    const char *p = name;
    long number = 0;
    bool fits = isdigit((unsigned char)*p);
    for (; fits && isdigit((unsigned char)*p); p++) {
        fits = number <= SCHEMASET_MAX_VERSIONS;
        number = number * 10 + (*p - '0');
    }
    fits = fits && number <= SCHEMASET_MAX_VERSIONS && (*p == '_' || *p == '-');
    size_t nd = (size_t)(p - name);
    bool is_down = fits && s_ends_with(p + 1, ".down.sql");
    size_t words_len = fits ? strlen(p + 1) - (is_down ? strlen(".down.sql") : strlen(".sql")) : 0;
    if (words_len == 0)
        return stm_error_set(l->err, STM_EINPUT,
                             "%s/%s: not a migration file name: expected NNN_description.sql "
                             "or NNN_description.down.sql, NNN from 1 to %d",
                             l->dir, name, SCHEMASET_MAX_VERSIONS);
    char *down_where = NULL;
    if (!is_down) {
        buf_t b = BUF_INIT;
        stm_buf_printf(&b, "%.*s.down.sql", (int)(strlen(name) - strlen(".sql")), name);
        down_where = stm_buf_detach(&b);
    }
    return s_push(l, name, name, nd, stm_strndup(name, nd), p + 1, words_len, down_where,
                  is_down ? LAYOUT_PART_DOWN : LAYOUT_PART_UP);
}

/* sqlx, golang-migrate, goose and dbmate: <version>_words and a suffix. */
static stm_err s_numbered_file(s_list *l, const char *name)
{
    size_t nd = s_numbered(name);
    const char *words = name + nd + 1;
    bool up = s_ends_with(name, ".up.sql"), down = s_ends_with(name, ".down.sql");
    bool sections = l->layout == LAYOUT_GOOSE || l->layout == LAYOUT_DBMATE;
    if (l->layout == LAYOUT_GOOSE && nd && s_ends_with(name, ".go"))
        return stm_error_set(l->err, STM_EINPUT,
                             "%s/%s: a goose migration written in Go, which stemma cannot run; "
                             "write it in SQL to keep the history whole",
                             l->dir, name);
    if (!s_ends_with(name, ".sql"))
        return STM_OK;
    if (!nd || (l->layout == LAYOUT_GOLANG_MIGRATE && !up && !down)) {
        static const char *const expected[LAYOUT_COUNT] = {
            [LAYOUT_SQLX] = "<version>_<description>.sql, or .up.sql and .down.sql",
            [LAYOUT_GOLANG_MIGRATE] = "<version>_<title>.up.sql or <version>_<title>.down.sql",
            [LAYOUT_GOOSE] = "<version>_<description>.sql",
            [LAYOUT_DBMATE] = "<version>_<description>.sql",
        };
        return stm_error_set(l->err, STM_EINPUT,
                             "%s/%s: not a migration file name of %s: expected %s", l->dir, name,
                             stm_layout_name(l->layout), expected[l->layout]);
    }
    size_t words_len = strlen(words) - (sections ? 4 : up ? 7 : down ? 9 : 4);
    layout_part part = sections ? LAYOUT_PART_BOTH : down ? LAYOUT_PART_DOWN : LAYOUT_PART_UP;
    buf_t b = BUF_INIT;
    if (sections)
        stm_buf_printf(&b, "%s's %s section", name,
                       l->layout == LAYOUT_GOOSE ? "'-- +goose Down'" : "'-- migrate:down'");
    else if (!down)
        stm_buf_printf(&b, "%.*s.down.sql", (int)(nd + 1 + words_len), name);
    return s_push(l, name, name, nd, stm_strndup(name, nd), words, words_len,
                  part == LAYOUT_PART_DOWN ? NULL : stm_buf_detach(&b), part);
}

/* Flyway: V<version>__words.sql and U<version>__words.sql; prefix is the sub-directory
 * ("" or "sub/"). */
static stm_err s_flyway_file(s_list *l, const char *prefix, const char *name)
{
    buf_t file = BUF_INIT;
    stm_buf_printf(&file, "%s%s", prefix, name);
    const char *path = stm_buf_str(&file);
    stm_err rc = STM_OK;
    size_t vlen = name[0] == 'V' || name[0] == 'U' ? s_flyway_version(name + 1) : 0;
    if (!s_ends_with(name, ".sql")) {
        if (s_flyway_like(name) && !s_ends_with(name, ".conf"))
            rc = stm_error_set(l->err, STM_EINPUT,
                               "%s/%s: a Flyway migration not written in SQL, which stemma "
                               "cannot run; write it in SQL to keep the history whole",
                               l->dir, path);
    } else if (strncmp(name, "R__", 3) == 0) {
        rc = stm_error_set(l->err, STM_EINPUT,
                           "%s/%s: a repeatable Flyway migration, which has no version: stemma "
                           "reads versioned (V) and undo (U) migrations only",
                           l->dir, path);
    } else if (!vlen) {
        rc = stm_error_set(l->err, STM_EINPUT,
                           "%s/%s: not a migration file name of flyway: expected "
                           "V<version>__<description>.sql or U<version>__<description>.sql",
                           l->dir, path);
    } else {
        char *key = stm_strndup(name + 1, vlen);
        for (char *q = key; *q; q++)
            *q = *q == '_' ? '.' : *q;
        const char *words = name + 1 + vlen + 2;
        size_t words_len = strlen(words) - 4;
        bool down = name[0] == 'U';
        buf_t where = BUF_INIT;
        if (!down)
            stm_buf_printf(&where, "%sU%.*s", prefix, (int)(strlen(name) - 1), name + 1);
        rc = s_push(l, path, name + 1, vlen, key, words, words_len,
                    down ? NULL : stm_buf_detach(&where), down ? LAYOUT_PART_DOWN : LAYOUT_PART_UP);
    }
    stm_buf_free(&file);
    return rc;
}

/* Diesel: the directory name holds up.sql and, maybe, down.sql. */
static stm_err s_diesel_dir(s_list *l, const char *name)
{
    size_t vlen = s_diesel_version(name);
    if (!vlen)
        return stm_error_set(l->err, STM_EINPUT,
                             "%s/%s: not a migration directory name of diesel: expected "
                             "<version>_<name>, the version digits and '-'",
                             l->dir, name);
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", l->dir, name);
    DIR *d = opendir(stm_buf_str(&path));
    stm_buf_free(&path);
    if (!d)
        return stm_error_set(l->err, STM_EINPUT, "%s/%s: cannot open: %s", l->dir, name,
                             strerror(errno));
    bool has_up = false, has_down = false;
    stm_err rc = STM_OK;
    struct dirent *e;
    while (rc == STM_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, "up.sql") == 0)
            has_up = true;
        else if (strcmp(e->d_name, "down.sql") == 0)
            has_down = true;
        else if (e->d_name[0] != '.' && s_ends_with(e->d_name, ".sql"))
            rc = stm_error_set(l->err, STM_EINPUT,
                               "%s/%s/%s: not part of a Diesel migration, which is up.sql and "
                               "down.sql",
                               l->dir, name, e->d_name);
    }
    closedir(d);
    if (rc == STM_OK && !has_up)
        rc = stm_error_set(l->err, STM_EINPUT, "%s/%s: a Diesel migration without its up.sql",
                           l->dir, name);
    char *key = stm_malloc(vlen + 1), *k = key;
    for (size_t i = 0; i < vlen; i++)
        if (name[i] != '-')
            *k++ = name[i];
    *k = '\0';
    buf_t file = BUF_INIT, where = BUF_INIT;
    stm_buf_printf(&file, "%s/up.sql", name);
    stm_buf_printf(&where, "%s/down.sql", name);
    const char *words = name + vlen + 1;
    if (rc == STM_OK && has_down)
        rc = s_push(l, stm_buf_str(&where), name, vlen, stm_strdup(key), words, strlen(words), NULL,
                    LAYOUT_PART_DOWN);
    if (rc == STM_OK)
        rc = s_push(l, stm_buf_str(&file), name, vlen, key, words, strlen(words),
                    stm_buf_detach(&where), LAYOUT_PART_UP);
    else
        free(key);
    stm_buf_free(&file);
    stm_buf_free(&where);
    return rc;
}

/* One entry of the directory dir/sub (sub "" at the top, else ending in '/'). */
static stm_err s_entry(s_list *l, const char *sub, const char *name, bool is_dir)
{
    switch (l->layout) {
    case LAYOUT_STEMMA:
        return s_stemma(l, name);
    case LAYOUT_FLYWAY:
        return is_dir ? STM_OK : s_flyway_file(l, sub, name);
    case LAYOUT_DIESEL:
        if (is_dir)
            return s_diesel_dir(l, name);
        if (s_ends_with(name, ".sql"))
            return stm_error_set(l->err, STM_EINPUT,
                                 "%s/%s: not in a migration directory: Diesel's migrations are "
                                 "directories <version>_<name> holding up.sql and down.sql",
                                 l->dir, name);
        return STM_OK;
    default:
        return is_dir ? STM_OK : s_numbered_file(l, name);
    }
}

/* Lists dir/sub, and below it for Flyway. */
static stm_err s_walk(s_list *l, const char *sub, int depth)
{
    if (depth > LAYOUT_MAX_DEPTH)
        return stm_error_set(l->err, STM_EINPUT, "%s/%s: directories nested deeper than %d", l->dir,
                             sub, LAYOUT_MAX_DEPTH);
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", l->dir, sub);
    DIR *d = opendir(*sub ? stm_buf_str(&path) : l->dir);
    if (!d) {
        stm_err rc = stm_error_set(l->err, STM_EINPUT, "%s: cannot open the schema directory: %s",
                                   *sub ? stm_buf_str(&path) : l->dir, strerror(errno));
        stm_buf_free(&path);
        return rc;
    }
    stm_err rc = STM_OK;
    struct dirent *e;
    while (rc == STM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        /* stemma's layout goes by names alone, as it always has. */
        stm_buf_reset(&path);
        stm_buf_printf(&path, "%s%s", sub, e->d_name);
        bool is_dir = l->layout != LAYOUT_STEMMA && s_is(l->dir, stm_buf_str(&path), S_IFDIR);
        if (is_dir && l->layout == LAYOUT_FLYWAY) {
            stm_buf_putc(&path, '/');
            rc = s_walk(l, stm_buf_str(&path), depth + 1);
        } else {
            rc = s_entry(l, sub, e->d_name, is_dir);
        }
    }
    closedir(d);
    stm_buf_free(&path);
    return rc;
}

/* Orders by version, a migration before its rollback, then by file (so that the first
 * of two duplicates is stable). */
static int s_compare_entries(const void *pa, const void *pb)
{
    const layout_entry *a = pa, *b = pb;
    int c = stm_layout_compare(a->layout, a->key, b->key);
    if (c)
        return c;
    if ((a->part == LAYOUT_PART_DOWN) != (b->part == LAYOUT_PART_DOWN))
        return a->part == LAYOUT_PART_DOWN ? 1 : -1;
    return strcmp(a->file, b->file);
}

stm_err stm_layout_list(const char *dir, schemaset_layout layout, layout_entry **entries,
                        size_t *count, stm_error *err)
{
    s_list l = {.dir = dir, .layout = layout, .err = err};
    stm_err rc = s_walk(&l, "", 0);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, s_compare_entries);
    *entries = l.v;
    *count = l.n;
    return rc;
}

void stm_layout_entries_free(layout_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(entries[i].file);
        free(entries[i].version);
        free(entries[i].key);
        free(entries[i].words);
        free(entries[i].down_where);
    }
    free(entries);
}

/* ---- detection ---- */

/* What only one tool writes, in detection's order. */
enum { D_FLYWAY, D_DIESEL, D_GOOSE, D_DBMATE, D_UPDOWN, D_SIGNS };

/* Whether the <version>_words.sql file dir/name is marked as goose's or dbmate's: sets
 * seen[] for each, and returns whether it is marked (1) or not (0). A file that cannot be
 * read is passed over (-1). */
static int s_look_inside(const char *dir, const char *name, char *seen[D_SIGNS])
{
    int marked = -1;
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", dir, name);
    char *text = NULL;
    size_t len = 0;
    if (stm_readfile_all(stm_buf_str(&path), SCHEMASET_MAX_FILE_BYTES, &text, &len, NULL) ==
        STM_OK) {
        len = stm_schemaset_normalise(text, len);
        bool goose = stm_sections_marked(LAYOUT_GOOSE, text, len);
        bool dbmate = stm_sections_marked(LAYOUT_DBMATE, text, len);
        if (goose && !seen[D_GOOSE])
            seen[D_GOOSE] = stm_strdup(name);
        if (dbmate && !seen[D_DBMATE])
            seen[D_DBMATE] = stm_strdup(name);
        marked = goose || dbmate;
    }
    free(text);
    stm_buf_free(&path);
    return marked;
}

/* The first Flyway-named .sql file in dir/sub or below (sub ending in '/'), as a path
 * under dir the caller frees; NULL when there is none. */
static char *s_flyway_below(const char *dir, const char *sub, int depth)
{
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", dir, sub);
    DIR *d = depth <= LAYOUT_MAX_DEPTH ? opendir(stm_buf_str(&path)) : NULL;
    char *found = NULL;
    struct dirent *e;
    while (d && !found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        stm_buf_reset(&path);
        stm_buf_printf(&path, "%s%s", sub, e->d_name);
        if (s_ends_with(e->d_name, ".sql") && s_flyway_like(e->d_name)) {
            found = stm_buf_detach(&path);
        } else if (s_is(dir, stm_buf_str(&path), S_IFDIR)) {
            stm_buf_putc(&path, '/');
            found = s_flyway_below(dir, stm_buf_str(&path), depth + 1);
        }
    }
    if (d)
        closedir(d);
    stm_buf_free(&path);
    return found;
}

/* Whether dir/name is a Diesel migration directory: named so, holding up.sql. */
static bool s_diesel_like(const char *dir, const char *name)
{
    buf_t up = BUF_INIT;
    stm_buf_printf(&up, "%s/up.sql", name);
    bool is = s_diesel_version(name) && s_is(dir, stm_buf_str(&up), S_IFREG);
    stm_buf_free(&up);
    return is;
}

stm_err stm_layout_detect(const char *dir, schemaset_layout *out, stm_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return stm_error_set(err, STM_EINPUT, "%s: cannot open the schema directory: %s", dir,
                             strerror(errno));
    char *seen[D_SIGNS] = {0}; /* a file of each sign found, owned */
    bool plain = false;        /* a <version>_words.sql file marked by no tool */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        int sign = -1;
        if (name[0] == '.')
            continue;
        if (s_ends_with(name, ".sql") && s_flyway_like(name))
            sign = D_FLYWAY;
        else if (s_ends_with(name, ".sql") && s_numbered(name) && s_ends_with(name, ".up.sql"))
            sign = D_UPDOWN;
        else if (s_is(dir, name, S_IFDIR) && s_diesel_like(dir, name))
            sign = D_DIESEL;
        else if (s_is(dir, name, S_IFDIR) && !seen[D_FLYWAY]) {
            buf_t sub = BUF_INIT;
            stm_buf_printf(&sub, "%s/", name);
            seen[D_FLYWAY] = s_flyway_below(dir, stm_buf_str(&sub), 1);
            stm_buf_free(&sub);
        } else if (s_ends_with(name, ".sql") && s_numbered(name) && !s_ends_with(name, ".down.sql"))
            plain = s_look_inside(dir, name, seen) == 0 || plain;
        if (sign >= 0 && !seen[sign])
            seen[sign] = stm_strdup(name);
    }
    closedir(d);
    static const char *const names[D_SIGNS] = {"flyway", "diesel", "goose", "dbmate",
                                               "golang-migrate or sqlx"};
    static const schemaset_layout layouts[D_SIGNS] = {LAYOUT_FLYWAY, LAYOUT_DIESEL, LAYOUT_GOOSE,
                                                      LAYOUT_DBMATE, LAYOUT_GOLANG_MIGRATE};
    buf_t fits = BUF_INIT;
    size_t nfits = 0;
    *out = LAYOUT_STEMMA;
    for (int i = 0; i < D_SIGNS; i++) {
        if (!seen[i])
            continue;
        stm_buf_printf(&fits, "%s%s (%s)", nfits++ ? ", " : "", names[i], seen[i]);
        *out = layouts[i];
        free(seen[i]);
    }
    /* Both write .up.sql and .down.sql pairs and read them alike; sqlx alone writes
     * plain <version>_words.sql files beside them. */
    if (*out == LAYOUT_GOLANG_MIGRATE && plain)
        *out = LAYOUT_SQLX;
    stm_err rc = STM_OK;
    if (nfits > 1)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: fits more than one layout: %s; name the one it is in (--layout "
                           "NAME, one of " LAYOUT_NAMES ")",
                           dir, stm_buf_str(&fits));
    stm_buf_free(&fits);
    return rc;
}
