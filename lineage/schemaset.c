#include "schemaset.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct schemaset {
    char *dir;                       /* as given */
    char *name;                      /* last path component of dir */
    schemaset_migration *migrations; /* index i holds number i + 1 */
    size_t count;                    /* migrations in use */
};

/* A file name split into its parts: "002_add_priority.down.sql" is number 2, words
 * "add_priority", is_down true. */
typedef struct {
    long number;
    char *words;
    int is_down;
} s_name_parts;

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

static int s_ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Splits a migration file name; returns 0 when it does not follow NNN_words.sql. */
static int s_split_name(const char *file, s_name_parts *parts)
{
    const char *p = file;
    if (!isdigit((unsigned char)*p))
        return 0;
    long number = 0;
    while (isdigit((unsigned char)*p)) {
        if (number > SCHEMASET_MAX_VERSIONS)
            return 0;
        number = number * 10 + (*p - '0');
        p++;
    }
    if (number > SCHEMASET_MAX_VERSIONS)
        return 0;
    if (*p != '_' && *p != '-')
        return 0;
    p++;
    parts->is_down = s_ends_with(p, ".down.sql");
    size_t words_len = strlen(p) - (parts->is_down ? strlen(".down.sql") : strlen(".sql"));
    if (words_len == 0)
        return 0;
    parts->number = number;
    parts->words = stm_strndup(p, words_len);
    return 1;
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
}

/* One .sql file of the directory, its name split. */
typedef struct {
    char *file;
    s_name_parts parts;
} s_entry;

/* Orders by number, a migration before its rollback, then by name (so that the
 * first of two duplicates is stable). */
static int s_compare_entries(const void *pa, const void *pb)
{
    const s_entry *a = pa, *b = pb;
    if (a->parts.number != b->parts.number)
        return a->parts.number < b->parts.number ? -1 : 1;
    if (a->parts.is_down != b->parts.is_down)
        return a->parts.is_down - b->parts.is_down;
    return strcmp(a->file, b->file);
}

/* Lists the directory's .sql files with their names split, sorted by number. */
static stm_err s_list_entries(const char *dir, s_entry **entries_out, size_t *count_out,
                              stm_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return stm_error_set(err, STM_EINPUT, "%s: cannot open the schema directory: %s", dir,
                             strerror(errno));
    s_entry *entries = NULL;
    size_t count = 0, cap = 0;
    stm_err rc = STM_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !s_ends_with(e->d_name, ".sql"))
            continue;
        s_name_parts parts;
        if (!s_split_name(e->d_name, &parts)) {
            rc = stm_error_set(err, STM_EINPUT,
                               "%s/%s: not a migration file name: expected NNN_description.sql "
                               "or NNN_description.down.sql, NNN from 1 to %d",
                               dir, e->d_name, SCHEMASET_MAX_VERSIONS);
            break;
        }
        entries = stm_grow(entries, &cap, count + 1, sizeof *entries);
        entries[count].file = stm_strdup(e->d_name);
        entries[count].parts = parts;
        count++;
    }
    closedir(d);
    if (count > 1)
        qsort(entries, count, sizeof *entries, s_compare_entries);
    *entries_out = entries;
    *count_out = count;
    return rc;
}

stm_err stm_schemaset_load(const char *dir, schemaset_t **out, stm_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return stm_error_set(err, STM_EINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return stm_error_set(err, STM_EINPUT, "%s: not a directory", dir);

    s_entry *entries = NULL;
    size_t nentries = 0;
    stm_err rc = s_list_entries(dir, &entries, &nentries, err);

    schemaset_t *self = stm_calloc(1, sizeof *self);
    self->dir = stm_strdup(dir);
    size_t name_len;
    const char *name = s_last_component(dir, &name_len);
    self->name = stm_strndup(name, name_len);

    size_t cap = 0;
    for (size_t i = 0; i < nentries && rc == STM_OK; i++) {
        const s_entry *e = &entries[i];
        long expected = (long)self->count + 1;
        schemaset_migration *last = self->count ? &self->migrations[self->count - 1] : NULL;
        if (e->parts.is_down) {
            if (!last || last->number != e->parts.number)
                rc = stm_error_set(err, STM_EINPUT,
                                   "%s/%s: rollback without its migration (no %03ld_*.sql)", dir,
                                   e->file, e->parts.number);
            else if (last->down_file)
                rc = stm_error_set(err, STM_EINPUT,
                                   "%s/%s: duplicate rollback for migration %ld (also %s)", dir,
                                   e->file, e->parts.number, last->down_file);
            else {
                size_t down_len;
                rc = s_read_file(dir, e->file, &last->down_text, &down_len, err);
                if (rc == STM_OK)
                    last->down_file = stm_strdup(e->file);
            }
            continue;
        }
        if (last && e->parts.number == last->number) {
            rc = stm_error_set(err, STM_EINPUT, "%s/%s: duplicate migration number %ld (also %s)",
                               dir, e->file, e->parts.number, last->file);
            continue;
        }
        if (e->parts.number != expected) {
            if (e->parts.number == 0)
                rc = stm_error_set(err, STM_EINPUT, "%s/%s: migration numbers start at 1", dir,
                                   e->file);
            else if (expected == 1)
                rc = stm_error_set(err, STM_EINPUT,
                                   "%s/%s: migration numbers start at 1, and there is no 1", dir,
                                   e->file);
            else
                rc = stm_error_set(err, STM_EINPUT,
                                   "%s/%s: gap in the migration numbers: %ld follows %ld", dir,
                                   e->file, e->parts.number, expected - 1);
            continue;
        }
        self->migrations = stm_grow(self->migrations, &cap, self->count + 1,
                                    sizeof *self->migrations);
        schemaset_migration *m = &self->migrations[self->count];
        memset(m, 0, sizeof *m);
        rc = s_read_file(dir, e->file, &m->text, &m->text_len, err);
        if (rc != STM_OK)
            continue;
        self->count++;
        m->number = (int)e->parts.number;
        m->file = stm_strdup(e->file);
        m->description = s_description(m->text, e->parts.words);
    }
    for (size_t i = 0; i < nentries; i++) {
        free(entries[i].file);
        free(entries[i].parts.words);
    }
    free(entries);
    if (rc != STM_OK) {
        stm_schemaset_destroy(&self);
        return rc;
    }
    *out = self;
    return STM_OK;
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

size_t stm_schemaset_count(const schemaset_t *self)
{
    return self->count;
}

const schemaset_migration *stm_schemaset_at(const schemaset_t *self, size_t i)
{
    return &self->migrations[i];
}
