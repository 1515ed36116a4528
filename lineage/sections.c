/* sections.c - a migration and its rollback in one file, split at marker lines
 * (sections.h). */
#include "sections.h"
#include "base/mem.h"

#include <string.h>
#include <strings.h>

/* What a line is to the layout. */
typedef enum { S_TEXT, S_UP, S_DOWN, S_REFUSED } s_kind;

static const char *s_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* The line [p, end) in goose's layout. */
static s_kind s_goose_line(const char *p, const char *end)
{
    if (end - p < 2 || p[0] != '-' || p[1] != '-')
        return S_TEXT;
    p = s_blanks(p + 2, end);
    if (end - p < 6 || memcmp(p, "+goose", 6) != 0)
        return S_TEXT;
    p = s_blanks(p + 6, end);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - p);
    if (n == 2 && strncasecmp(p, "up", 2) == 0)
        return S_UP;
    if (n == 4 && strncasecmp(p, "down", 4) == 0)
        return S_DOWN;
    if (n == 9 && strncasecmp(p, "envsub on", 9) == 0)
        return S_REFUSED;
    return S_TEXT;
}

/* The line [p, end) in dbmate's layout. */
static s_kind s_dbmate_line(const char *p, const char *end)
{
    if (end - p < 2 || p[0] != '-' || p[1] != '-')
        return S_TEXT;
    p = s_blanks(p + 2, end);
    static const struct {
        const char *word;
        s_kind kind;
    } markers[] = {{"migrate:up", S_UP}, {"migrate:down", S_DOWN}};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        size_t n = strlen(markers[i].word);
        if ((size_t)(end - p) >= n && memcmp(p, markers[i].word, n) == 0 &&
            (p + n == end || p[n] == ' ' || p[n] == '\t'))
            return markers[i].kind;
    }
    return S_TEXT;
}

static s_kind s_line(schemaset_layout layout, const char *p, const char *end)
{
    return layout == LAYOUT_GOOSE ? s_goose_line(p, end) : s_dbmate_line(p, end);
}

/* A line that may stand before the Up marker: blank, or a "--" comment. */
static int s_blank_or_comment(const char *p, const char *end)
{
    p = s_blanks(p, end);
    return p == end || (end - p >= 2 && p[0] == '-' && p[1] == '-');
}

/* A marker line at line that stood at first already. */
static stm_err s_second(stm_error *err, const char *path, int line, const char *marker, int first)
{
    return stm_error_set(err, STM_EINPUT, "%s:%d: a second %s line (the first is line %d)", path,
                         line, marker, first);
}

bool stm_sections_marked(schemaset_layout layout, const char *text, size_t len)
{
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        s_kind k = s_line(layout, p, eol);
        if (k == S_UP || k == S_DOWN)
            return true;
        p = nl ? nl + 1 : end;
    }
    return false;
}

stm_err stm_sections_split(schemaset_layout layout, const char *path, const char *text, size_t len,
                           char **up, size_t *up_len, char **down, size_t *down_len, stm_error *err)
{
    const char *up_marker = layout == LAYOUT_GOOSE ? "'-- +goose Up'" : "'-- migrate:up'";
    const char *down_marker = layout == LAYOUT_GOOSE ? "'-- +goose Down'" : "'-- migrate:down'";
    const char *end = text + len;
    const char *up_at = NULL, *up_end = end, *down_at = NULL;
    int line = 1, up_line = 0, down_line = 0, stray_line = 0;
    *up = *down = NULL;
    for (const char *p = text; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
        switch (s_line(layout, p, eol)) {
        case S_REFUSED:
            return stm_error_set(err, STM_EINPUT,
                                 "%s:%d: '-- +goose ENVSUB ON': goose puts environment variables "
                                 "into the SQL it runs, and stemma runs the text as written; "
                                 "write the values in",
                                 path, line);
        case S_UP:
            if (up_at)
                return s_second(err, path, line, up_marker, up_line);
            up_at = next;
            up_line = line;
            break;
        case S_DOWN:
            if (!up_at)
                return stm_error_set(err, STM_EINPUT, "%s:%d: %s before the %s line", path, line,
                                     down_marker, up_marker);
            if (down_at)
                return s_second(err, path, line, down_marker, down_line);
            up_end = p;
            down_at = next;
            down_line = line;
            break;
        case S_TEXT:
            if (!up_at && !stray_line && !s_blank_or_comment(p, eol))
                stray_line = line;
            break;
        }
        p = next;
    }
    if (!up_at)
        return stm_error_set(err, STM_EINPUT,
                             "%s: no %s line: in %s's layout the migration is what follows it",
                             path, up_marker, stm_layout_name(layout));
    if (stray_line)
        return stm_error_set(err, STM_EINPUT,
                             "%s:%d: SQL before the %s line, where it belongs to no section (%s "
                             "refuses it too)",
                             path, stray_line, up_marker, stm_layout_name(layout));
    *up_len = (size_t)(up_end - up_at);
    *up = stm_strndup(up_at, *up_len);
    if (down_at) {
        *down_len = (size_t)(end - down_at);
        *down = stm_strndup(down_at, *down_len);
    }
    return STM_OK;
}
