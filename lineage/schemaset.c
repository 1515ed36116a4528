/* schemaset.c - a directory of migrations read into versions 1..N (schemaset.h); which
 * files hold them is the layout's business (layout.h). */
#include "schemaset.h"
#include "sections.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct schemaset {
    char *dir;                       /* as given */
    char *name;                      /* last path component of dir */
    schemaset_layout layout;         /* how its files are named, never LAYOUT_AUTO */
    schemaset_migration *migrations; /* index i holds number i + 1 */
    size_t count;                    /* migrations in use */
};

static const char *s_last_component(const char *path, size_t *len)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    *len = n - start;
    return path + start;
}

size_t stm_schemaset_normalise(char *text, size_t len)
{
    size_t in = 0, out = 0;
    if (len >= 3 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
        (unsigned char)text[2] == 0xbf)
        in = 3;
    while (in < len) {
        char c = text[in++];
        if (c == '\r') {
            if (in < len && text[in] == '\n')
                in++;
            c = '\n';
        }
        text[out++] = c;
    }
    text[out] = '\0';
    return out;
}

/* Reads and normalises one file. */
static stm_err s_read_file(const char *dir, const char *file, char **text, size_t *len,
                           stm_error *err)
{
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", dir, file);
    char *data;
    size_t got;
    stm_err rc = stm_readfile_all(stm_buf_str(&path), SCHEMASET_MAX_FILE_BYTES, &data, &got, err);
    if (rc == STM_OK && memchr(data, '\0', got)) {
        free(data);
        rc = stm_error_set(err, STM_EINPUT, "%s: holds a NUL byte; SQLite would stop reading there",
                           stm_buf_str(&path));
    } else if (rc == STM_OK) {
        *len = stm_schemaset_normalise(data, got);
        *text = data;
    }
    stm_buf_free(&path);
    return rc;
}

/* The description: the first line when it is a comment "-- Description: text" (the
 * word matched without regard to case, the colon optional), else the file name's
 * words with underscores as spaces. */
static char *s_description(const char *text, const char *words)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (p[0] == '-' && p[1] == '-') {
        p += 2;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "description", 11) == 0) {
            p += 11;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == ':')
                p++;
            while (*p == ' ' || *p == '\t')
                p++;
            const char *end = strchr(p, '\n');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n > 0)
                return stm_strndup(p, n);
        }
    }
    char *d = stm_strdup(words);
    for (char *q = d; *q; q++)
        if (*q == '_' || *q == '-')
            *q = ' ';
    return d;
}

static void s_free_migration(schemaset_migration *m)
{
    free(m->file);
    free(m->description);
    free(m->text);
    free(m->down_file);
    free(m->down_text);
    free(m->down_where);
}

/* Reads entry e's file into m: its text, and for a file of two sections its rollback
 * too. */
static stm_err s_read_migration(const char *dir, schemaset_layout layout, const layout_entry *e,
                                schemaset_migration *m, stm_error *err)
{
    stm_err rc = s_read_file(dir, e->file, &m->text, &m->text_len, err);
    if (rc != STM_OK || e->part != LAYOUT_PART_BOTH)
        return rc;
    char *whole = m->text;
    buf_t path = BUF_INIT;
    stm_buf_printf(&path, "%s/%s", dir, e->file);
    size_t down_len;
    rc = stm_sections_split(layout, stm_buf_str(&path), whole, m->text_len, &m->text, &m->text_len,
                            &m->down_text, &down_len, err);
    if (rc == STM_OK && m->down_text)
        m->down_file = stm_strdup(e->file);
    stm_buf_free(&path);
    free(whole);
    return rc;
}

/* stemma's own numbering: 1, 2, ... without gaps, in its own words. */
static stm_err s_stemma_number(const char *dir, const layout_entry *e, long expected,
                               stm_error *err)
{
    long number = strtol(e->key, NULL, 10);
    if (number == expected)
        return STM_OK;
    if (number == 0)
        return stm_error_set(err, STM_EINPUT, "%s/%s: migration numbers start at 1", dir, e->file);
    if (expected == 1)
        return stm_error_set(err, STM_EINPUT,
                             "%s/%s: migration numbers start at 1, and there is no 1", dir,
                             e->file);
    return stm_error_set(err, STM_EINPUT, "%s/%s: gap in the migration numbers: %ld follows %ld",
                         dir, e->file, number, expected - 1);
}

/* A rollback: onto the migration of its version, last, which has none yet. */
static stm_err s_add_down(schemaset_t *self, const layout_entry *e, schemaset_migration *last,
                          bool same, stm_error *err)
{
    bool stemma = self->layout == LAYOUT_STEMMA;
    long number = strtol(e->key, NULL, 10);
    if (!same && stemma)
        return stm_error_set(err, STM_EINPUT,
                             "%s/%s: rollback without its migration (no %03ld_*.sql)", self->dir,
                             e->file, number);
    if (!same)
        return stm_error_set(err, STM_EINPUT,
                             "%s/%s: rollback without its migration (none of version %s)",
                             self->dir, e->file, e->version);
    if (last->down_file && stemma)
        return stm_error_set(err, STM_EINPUT,
                             "%s/%s: duplicate rollback for migration %ld (also %s)", self->dir,
                             e->file, number, last->down_file);
    if (last->down_file)
        return stm_error_set(err, STM_EINPUT, "%s/%s: duplicate rollback for version %s (also %s)",
                             self->dir, e->file, e->version, last->down_file);
    size_t down_len;
    stm_err rc = s_read_file(self->dir, e->file, &last->down_text, &down_len, err);
    if (rc == STM_OK)
        last->down_file = stm_strdup(e->file);
    return rc;
}

/* The migrations of the sorted entries, numbered 1..N. */
static stm_err s_assemble(schemaset_t *self, const layout_entry *entries, size_t n, stm_error *err)
{
    const char *dir = self->dir;
    const char *last_key = NULL; /* the version of the last migration */
    size_t cap = 0;
    stm_err rc = STM_OK;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const layout_entry *e = &entries[i];
        schemaset_migration *last = self->count ? &self->migrations[self->count - 1] : NULL;
        bool same = last && stm_layout_compare(self->layout, last_key, e->key) == 0;
        if (e->part == LAYOUT_PART_DOWN) {
            rc = s_add_down(self, e, last, same, err);
            continue;
        }
        if (same && self->layout == LAYOUT_STEMMA)
            rc = stm_error_set(err, STM_EINPUT, "%s/%s: duplicate migration number %ld (also %s)",
                               dir, e->file, strtol(e->key, NULL, 10), last->file);
        else if (same)
            rc = stm_error_set(err, STM_EINPUT, "%s/%s: duplicate version %s (also %s)", dir,
                               e->file, e->version, last->file);
        else if (self->layout == LAYOUT_STEMMA)
            rc = s_stemma_number(dir, e, (long)self->count + 1, err);
        if (rc != STM_OK)
            continue;
        self->migrations =
            stm_grow(self->migrations, &cap, self->count + 1, sizeof *self->migrations);
        schemaset_migration *m = &self->migrations[self->count];
        memset(m, 0, sizeof *m);
        rc = s_read_migration(dir, self->layout, e, m, err);
        if (rc != STM_OK) {
            s_free_migration(m);
            continue;
        }
        self->count++;
        m->number = (int)self->count;
        m->file = stm_strdup(e->file);
        m->description = s_description(m->text, e->words);
        m->down_where = stm_strdup(e->down_where);
        last_key = e->key;
    }
    return rc;
}

/* Reads dir in layout (not LAYOUT_AUTO). */
static stm_err s_load(const char *dir, schemaset_layout layout, schemaset_t **out, stm_error *err)
{
    layout_entry *entries = NULL;
    size_t nentries = 0;
    stm_err rc = stm_layout_list(dir, layout, &entries, &nentries, err);
    schemaset_t *self = stm_calloc(1, sizeof *self);
    self->dir = stm_strdup(dir);
    size_t name_len;
    const char *name = s_last_component(dir, &name_len);
    self->name = stm_strndup(name, name_len);
    self->layout = layout;
    if (rc == STM_OK)
        rc = s_assemble(self, entries, nentries, err);
    stm_layout_entries_free(entries, nentries);
    if (rc != STM_OK) {
        stm_schemaset_destroy(&self);
        return rc;
    }
    *out = self;
    return STM_OK;
}

stm_err stm_schemaset_load(const char *dir, schemaset_t **out, stm_error *err)
{
    return stm_schemaset_load_layout(dir, LAYOUT_AUTO, out, err);
}

stm_err stm_schemaset_load_layout(const char *dir, schemaset_layout layout, schemaset_t **out,
                                  stm_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return stm_error_set(err, STM_EINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return stm_error_set(err, STM_EINPUT, "%s: not a directory", dir);
    bool detected = layout == LAYOUT_AUTO;
    stm_err rc = detected ? stm_layout_detect(dir, &layout, err) : STM_OK;
    if (rc == STM_OK)
        rc = s_load(dir, layout, out, err);
    /* sqlx's plain layout is stemma's with any numbers, so detection never takes a
     * directory for it; one that stemma's numbering refuses may well be one. */
    schemaset_t *sqlx = NULL;
    if (rc == STM_EINPUT && detected && layout == LAYOUT_STEMMA &&
        s_load(dir, LAYOUT_SQLX, &sqlx, NULL) == STM_OK)
        stm_error_append(err, "the files fit sqlx's layout, whose numbers may start at 0 and "
                              "have gaps: if they are sqlx's, give --layout sqlx");
    stm_schemaset_destroy(&sqlx);
    return rc;
}

void stm_schemaset_destroy(schemaset_t **self_p)
{
    schemaset_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        s_free_migration(&self->migrations[i]);
    free(self->migrations);
    free(self->dir);
    free(self->name);
    free(self);
    *self_p = NULL;
}

const char *stm_schemaset_name(const schemaset_t *self)
{
    return self->name;
}

const char *stm_schemaset_dir(const schemaset_t *self)
{
    return self->dir;
}

schemaset_layout stm_schemaset_layout(const schemaset_t *self)
{
    return self->layout;
}

size_t stm_schemaset_count(const schemaset_t *self)
{
    return self->count;
}

const schemaset_migration *stm_schemaset_at(const schemaset_t *self, size_t i)
{
    return &self->migrations[i];
}
