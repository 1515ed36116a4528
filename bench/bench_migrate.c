/* bench_migrate - what migrating and reading a long history cost (issue 12, item 8).
 *
 * Usage: bench_migrate STEMMA WORKDIR [REAL_SET]
 *
 * Writes a history of 205 migrations into WORKDIR/long (tables created, columns
 * added, renamed and dropped, indexes, rows inserted and backfilled, tables rebuilt
 * through a copy and renamed back) and a fork of it (the first 180 the same), then:
 *
 *   - migrate: `stemma migrate` of a new database to the head, against the sqlite3
 *     shell running the same files on a new database in one process, one transaction
 *     per file (BEGIN; the file; COMMIT), in the same run, with the journal stemma
 *     sets (WAL, synchronous=NORMAL): the shell's default syncs at every commit, and
 *     would time the disk. With the cache of derived
 *     histories warm (lineage/cache.h; target: at most 2x) and without it (reported).
 *   - history, status, compare: one command each, with the cache warm (target: at
 *     most 50 ms), against the same command without the cache.
 *
 * REAL_SET (default ../shared/real-schemas/komga, skipped when missing): a real schema
 * set whose migrate is measured the same way. Each figure is the median of several
 * runs. Not a test: figures go to stdout, the table's rows as "row|...". */
#include "benchutil.h"
#include "base/buf.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSIONS 205
#define FORK_AT 181
#define MAX_TABLES 24
#define MAX_COLS 40
#define RUNS_MIGRATE 5
#define RUNS_READ 11

/* ---- the generated history ---- */

typedef struct {
    char name[32];
    char cols[MAX_COLS][32]; /* after id and name */
    bool indexed[MAX_COLS];  /* an index names the column: it is not dropped */
    int ncols;
    int nindex; /* indexes made on it, for their names */
} s_table;

typedef struct {
    s_table t[MAX_TABLES];
    int n;
} s_schema;

static void s_write(const char *dir, int v, const char *what, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%03d_%s.sql", dir, v, what);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        bench_die("cannot write a migration");
}

static void s_create(s_schema *s, buf_t *b, int v)
{
    s_table *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "t%02d", s->n - 1);
    snprintf(t->cols[0], sizeof t->cols[0], "c%d", v);
    t->ncols = 1;
    stm_buf_printf(b,
                   "CREATE TABLE %s (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', "
                   "%s INTEGER);\n",
                   t->name, t->cols[0]);
}

/* The column list "name, c1, c2, ..." of t. */
static void s_columns(const s_table *t, buf_t *b)
{
    stm_buf_puts(b, "name");
    for (int i = 0; i < t->ncols; i++)
        stm_buf_printf(b, ", %s", t->cols[i]);
}

/* Migration v of the history; from FORK_AT on, the fork's differ (fork true). */
static void s_migration(s_schema *s, int v, bool fork, buf_t *b)
{
    const char *tag = fork && v >= FORK_AT ? "f" : "";
    s_table *t = &s->t[(v * 7) % s->n];
    switch (v % 9) {
    case 0: /* a new table, while there is room */
        if (s->n < MAX_TABLES) {
            s_create(s, b, v);
            break;
        }
        /* fall through */
    case 1:
    case 5: /* a column added */
        if (t->ncols < MAX_COLS) {
            snprintf(t->cols[t->ncols], sizeof t->cols[0], "c%d%s", v, tag);
            stm_buf_printf(b, "ALTER TABLE %s ADD COLUMN %s TEXT DEFAULT 'x';\n", t->name,
                           t->cols[t->ncols++]);
            break;
        }
        /* fall through */
    case 2: /* rows inserted */
        stm_buf_printf(b,
                       "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE "
                       "i < 200)\nINSERT INTO %s (name) SELECT 'row %d%s ' || i FROM r;\n",
                       t->name, v, tag);
        break;
    case 3: /* an index */
        stm_buf_printf(b, "CREATE INDEX %s_i%d ON %s (%s);\n", t->name, t->nindex++, t->name,
                       t->cols[t->ncols - 1]);
        t->indexed[t->ncols - 1] = true;
        break;
    case 4: { /* a column renamed */
        char *c = t->cols[v % t->ncols];
        char old[32];
        snprintf(old, sizeof old, "%s", c);
        snprintf(c, sizeof t->cols[0], "r%d%s", v, tag);
        stm_buf_printf(b, "ALTER TABLE %s RENAME COLUMN %s TO %s;\n", t->name, old, c);
        break;
    }
    case 6: /* a backfill */
        stm_buf_printf(b, "UPDATE %s SET %s = name || '%d%s';\n", t->name,
                       t->cols[t->ncols - 1], v, tag);
        break;
    case 7: { /* a rebuild through a copy, renamed back (its indexes go with it) */
        buf_t cols = BUF_INIT;
        s_columns(t, &cols);
        stm_buf_printf(b, "CREATE TABLE %s_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL", t->name);
        for (int i = 0; i < t->ncols; i++)
            stm_buf_printf(b, ", %s %s", t->cols[i], i ? "TEXT" : "INTEGER");
        stm_buf_printf(b, ");\nINSERT INTO %s_new (id, %s) SELECT id, %s FROM %s;\n", t->name,
                       stm_buf_str(&cols), stm_buf_str(&cols), t->name);
        stm_buf_printf(b, "DROP TABLE %s;\nALTER TABLE %s_new RENAME TO %s;\n", t->name, t->name,
                       t->name);
        memset(t->indexed, 0, sizeof t->indexed);
        stm_buf_free(&cols);
        break;
    }
    default: { /* a column dropped: the last that no index names, keeping one */
        int k = t->ncols - 1;
        while (k > 0 && t->indexed[k])
            k--;
        if (k > 0) {
            stm_buf_printf(b, "ALTER TABLE %s DROP COLUMN %s;\n", t->name, t->cols[k]);
            memmove(&t->cols[k], &t->cols[k + 1], (size_t)(t->ncols - k - 1) * sizeof t->cols[0]);
            memmove(&t->indexed[k], &t->indexed[k + 1], (size_t)(t->ncols - k - 1));
            t->ncols--;
        } else {
            stm_buf_printf(b, "UPDATE %s SET name = upper(name);\n", t->name);
        }
        break;
    }
    }
}

static void s_generate(const char *dir, bool fork)
{
    if (mkdir(dir, 0755) != 0)
        bench_die("cannot make the schema directory");
    s_schema s = {0};
    buf_t b = BUF_INIT;
    for (int i = 0; i < 4; i++)
        s_create(&s, &b, 1);
    s_write(dir, 1, "start", stm_buf_str(&b));
    for (int v = 2; v <= VERSIONS; v++) {
        stm_buf_reset(&b);
        stm_buf_printf(&b, "-- Description: step %d%s\n", v, fork && v >= FORK_AT ? " (fork)" : "");
        s_migration(&s, v, fork, &b);
        s_write(dir, v, "step", stm_buf_str(&b));
    }
    stm_buf_free(&b);
}

/* ---- running ---- */

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp_double);
    return v[n / 2];
}

/* The sqlite3 shell on PATH, or NULL. */
static char *s_sqlite3(void)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/bin:/bin");
    char *found = NULL;
    for (char *dir = strtok(copy, ":"); dir && !found; dir = strtok(NULL, ":")) {
        buf_t p = BUF_INIT;
        stm_buf_printf(&p, "%s/sqlite3", dir);
        if (access(stm_buf_str(&p), X_OK) == 0)
            found = stm_buf_detach(&p);
        stm_buf_free(&p);
    }
    free(copy);
    return found;
}

static int s_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One script running every migration of dir (not the .down.sql files) in its own
 * transaction, as a user would feed the sqlite3 shell: written to path. */
static void s_script(const char *dir, const char *path)
{
    DIR *d = opendir(dir);
    if (!d)
        bench_die("cannot read the schema set");
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0 &&
            !(len > 9 && strcmp(e->d_name + len - 9, ".down.sql") == 0)) {
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_name_cmp);
    FILE *out = fopen(path, "w");
    if (!out)
        bench_die("cannot write the script");
    /* The journal stemma gives a database (sync/store.c): the shell's default (a
     * rollback journal, synced at every commit) would time the disk, not the SQL. */
    fputs("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n", out);
    for (size_t i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", dir, names[i]);
        FILE *in = fopen(file, "r");
        if (!in)
            bench_die("cannot read a migration");
        fputs("BEGIN;\n", out);
        char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, in)) > 0)
            fwrite(chunk, 1, got, out);
        fclose(in);
        fputs("\n;\nCOMMIT;\n", out);
        free(names[i]);
    }
    free(names);
    if (fclose(out) != 0)
        bench_die("cannot write the script");
}

static void s_remove_db(const char *db)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", db, suffixes[i]);
        unlink(p);
    }
}

/* Seconds the sqlite3 shell takes to run script on a new database db. */
static double s_time_sqlite3(const char *shell, const char *db, const char *script)
{
    s_remove_db(db);
    buf_t read = BUF_INIT;
    stm_buf_printf(&read, ".read %s", script);
    char *argv[] = {(char *)shell, "-bail", (char *)db, read.data, NULL};
    double t0 = bench_now();
    if (bench_run(argv, NULL) != 0)
        bench_die("sqlite3 failed on the migrations");
    double t = bench_now() - t0;
    stm_buf_free(&read);
    return t;
}

/* Seconds `stemma migrate` takes to bring a new database db to set's head. */
static double s_time_migrate(const char *stemma, const char *db, const char *set)
{
    s_remove_db(db);
    double t0 = bench_now();
    bench_stemma(stemma, NULL, "migrate", "--db", db, "--schemas", set, "--no-backup", NULL);
    return bench_now() - t0;
}

static void s_cache(bool on, const char *dir)
{
    if (on) {
        unsetenv("STEMMA_NO_CACHE");
        setenv("STEMMA_CACHE_DIR", dir, 1);
    } else {
        setenv("STEMMA_NO_CACHE", "1", 1);
    }
}

static void s_fmt(char *out, size_t size, double seconds)
{
    if (seconds < 1)
        snprintf(out, size, "%.1f ms", seconds * 1000);
    else
        snprintf(out, size, "%.2f s", seconds);
}

/* The migrate figures of one schema set: warm cache, no cache, and the shell. */
static void s_migrate_rows(const char *stemma, const char *work, const char *set,
                           const char *label)
{
    char db[4200], script[4200], cache[4200];
    snprintf(db, sizeof db, "%s/bench.db", work);
    snprintf(script, sizeof script, "%s/all.sql", work);
    snprintf(cache, sizeof cache, "%s/cache", work);
    s_script(set, script);
    char *shell = s_sqlite3();
    if (!shell)
        bench_die("no sqlite3 shell on PATH: it is the baseline");
    double warm[RUNS_MIGRATE], cold[RUNS_MIGRATE], base[RUNS_MIGRATE];
    s_cache(true, cache);
    bench_stemma(stemma, NULL, "history", "--schemas", set, NULL); /* the cache made */
    /* Alternated, so that a slow minute of a shared machine falls on both. */
    for (int i = 0; i < RUNS_MIGRATE; i++) {
        base[i] = s_time_sqlite3(shell, db, script);
        s_cache(true, cache);
        warm[i] = s_time_migrate(stemma, db, set);
        s_cache(false, cache);
        cold[i] = s_time_migrate(stemma, db, set);
    }
    double w = s_median(warm, RUNS_MIGRATE), c = s_median(cold, RUNS_MIGRATE),
           b = s_median(base, RUNS_MIGRATE);
    char fw[32], fc[32], fb[32], rw[16], rc[16], fig[256];
    s_fmt(fw, sizeof fw, w);
    s_fmt(fc, sizeof fc, c);
    s_fmt(fb, sizeof fb, b);
    snprintf(rw, sizeof rw, "%.2f", w / b);
    snprintf(rc, sizeof rc, "%.2f", c / b);
    printf("%s: stemma migrate %s (cache warm), %s (no cache); sqlite3 shell %s\n", label, fw,
           fc, fb);
    snprintf(fig, sizeof fig, "migrate %s / sqlite3 shell, same files", label);
    bench_row(fig, fw, fb, rw, "<= 2.0");
    snprintf(fig, sizeof fig, "migrate %s without the cache of derived histories", label);
    bench_row(fig, fc, fb, rc, "reported");
    free(shell);
    s_remove_db(db);
}

/* The median seconds of `stemma ARGS` with the cache as asked (the cache warm). */
static double s_time_read(const char *stemma, bool cached, const char *cache, int runs,
                          char *const *args)
{
    double t[RUNS_READ];
    char *argv[16] = {(char *)stemma};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    s_cache(cached, cache);
    for (int i = 0; i < runs; i++) {
        double t0 = bench_now();
        if (bench_run(argv, NULL) != 0)
            bench_die("a reading command failed");
        t[i] = bench_now() - t0;
    }
    return s_median(t, runs);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_migrate STEMMA WORKDIR [REAL_SET]\n");
        return 2;
    }
    const char *stemma = argv[1], *work = argv[2];
    const char *real = argc > 3 ? argv[3] : "../shared/real-schemas/komga";
    mkdir(work, 0755);
    char set[4200], fork[4200], cache[4200], db[4200];
    snprintf(set, sizeof set, "%s/long", work);
    snprintf(fork, sizeof fork, "%s/long-fork", work);
    snprintf(cache, sizeof cache, "%s/cache", work);
    snprintf(db, sizeof db, "%s/status.db", work);
    s_generate(set, false);
    s_generate(fork, true);
    printf("stemma migrate benchmark: a generated history of %d migrations (a fork of it "
           "parting at %d), medians of %d runs (migrate) and %d (reading)\n",
           VERSIONS, FORK_AT, RUNS_MIGRATE, RUNS_READ);

    s_migrate_rows(stemma, work, set, "205 generated migrations");

    /* The reading commands, on a database at the head. */
    s_cache(true, cache);
    bench_stemma(stemma, NULL, "migrate", "--db", db, "--schemas", set, "--no-backup", NULL);
    bench_stemma(stemma, NULL, "history", "--schemas", fork, NULL);
    char *history[] = {"history", "--schemas", set, NULL};
    char *status[] = {"status", "--db", db, "--schemas", set, NULL};
    char *compare[] = {"compare", set, fork, NULL};
    struct {
        const char *figure;
        char *const *args;
    } reads[] = {
        {"history of 205 migrations, cache warm / no cache", history},
        {"status of 205 migrations, cache warm / no cache", status},
        {"compare 205 with a fork, cache warm / no cache", compare},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        double warm = s_time_read(stemma, true, cache, RUNS_READ, reads[i].args);
        double cold = s_time_read(stemma, false, cache, 3, reads[i].args);
        char fw[32], fc[32], r[16];
        s_fmt(fw, sizeof fw, warm);
        s_fmt(fc, sizeof fc, cold);
        snprintf(r, sizeof r, "%.3f", warm / cold);
        printf("%s: %s, %s\n", reads[i].figure, fw, fc);
        bench_row(reads[i].figure, fw, fc, r, "<= 50 ms");
    }

    struct stat st;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
        const char *base = strrchr(real, '/');
        char label[128];
        snprintf(label, sizeof label, "%s (real)", base ? base + 1 : real);
        s_migrate_rows(stemma, work, real, label);
    } else {
        printf("%s: not there, its figure skipped\n", real);
    }
    return 0;
}
