#include "sqlscript.h"
#include "directive.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* The 1-based line of position pos in text. */
static int s_line_of(const char *text, const char *pos)
{
    int line = 1;
    for (const char *p = text; p < pos; p++)
        if (*p == '\n')
            line++;
    return line;
}

/* Skips white space and SQL comments, so that errors point at the statement itself. */
static const char *s_skip_blank(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

static int s_is_transaction_control(const char *stmt)
{
    static const char *const words[] = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT",
                                        "RELEASE"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i]);
        if (strncasecmp(stmt, words[i], n) == 0 && !isalnum((unsigned char)stmt[n]) &&
            stmt[n] != '_')
            return 1;
    }
    return 0;
}

/* Copies up to 60 bytes of the statement, on one line, for an error message. */
static void s_excerpt(const char *stmt, char *out, size_t out_size)
{
    size_t n = 0;
    for (const char *p = stmt; *p && n + 4 < out_size && n < 60; p++) {
        char c = *p;
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c == ' ' && n > 0 && out[n - 1] == ' ')
            continue;
        out[n++] = c;
    }
    if (strlen(stmt) > n)
        memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
}

stm_err stm_sqlscript_run(sqlite3 *db, const char *file, const char *text, int allow_transactions,
                          stm_error *err)
{
    return stm_sqlscript_run_each(db, file, text, allow_transactions, NULL, NULL, err);
}

stm_err stm_sqlscript_run_each(sqlite3 *db, const char *file, const char *text,
                               int allow_transactions, sqlscript_before_fn before, void *ctx,
                               stm_error *err)
{
    stm_err checked = stm_directive_check_script(file, text, err);
    if (checked != STM_OK)
        return checked;
    const char *p = s_skip_blank(text);
    while (*p) {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        char excerpt[72];
        s_excerpt(p, excerpt, sizeof excerpt);
        if (!allow_transactions && s_is_transaction_control(p))
            return stm_error_set(err, STM_EINPUT,
                                 "%s:%d: a migration may not control transactions (stemma runs "
                                 "each migration in its own): %s",
                                 file, s_line_of(text, p), excerpt);
        int rc = sqlite3_prepare_v2(db, p, -1, &stmt, &tail);
        if (rc == SQLITE_OK && stmt && before) {
            stm_err brc = before(ctx, err);
            if (brc != STM_OK) {
                sqlite3_finalize(stmt);
                stm_error_append(err, "%s:%d (before: %s)", file, s_line_of(text, p), excerpt);
                return brc;
            }
        }
        if (rc == SQLITE_OK && stmt) {
            while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                ;
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK) {
            /* SQLite knows where in the statement a syntax error is; point there. */
            int offset = stmt ? -1 : sqlite3_error_offset(db);
            const char *at = offset >= 0 && (size_t)offset <= strlen(p) ? p + offset : p;
            stm_error_set(err, STM_EINPUT, "%s:%d: %s (in: %s)", file, s_line_of(text, at),
                          sqlite3_errmsg(db), excerpt);
            sqlite3_finalize(stmt);
            return STM_EINPUT;
        }
        sqlite3_finalize(stmt);
        if (!tail || tail == p)
            break;
        p = s_skip_blank(tail);
    }
    return STM_OK;
}

void stm_sqlscript_quote_ident(buf_t *b, const char *name)
{
    stm_buf_putc(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            stm_buf_putc(b, '"');
        stm_buf_putc(b, *p);
    }
    stm_buf_putc(b, '"');
}

int stm_sqlscript_schema_cookie(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    int cookie = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        cookie = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return cookie;
}

stm_err stm_sqlscript_open_memory(sqlite3 **db, stm_error *err)
{
    *db = NULL;
    if (sqlite3_open(":memory:", db) == SQLITE_OK)
        return STM_OK;
    stm_err rc = stm_error_set(err, STM_EDB, "cannot open an in-memory database: %s",
                               *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close(*db);
    *db = NULL;
    return rc;
}
