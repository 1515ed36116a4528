/* unsynced_text.c - the tables stemma does not sync, as text and as JSON
 * (unsynced_text.h). */
#include "unsynced_text.h"

/* Why t is not synced, in words, appended to b: the rule's, and for a virtual table
 * what becomes of its module's tables. */
static void s_reason(buf_t *b, const syncable_table *t)
{
    stm_buf_puts(b, stm_syncable_reason_text(t->reason));
    if (t->reason == SYNCABLE_VIRTUAL)
        stm_buf_printf(b, "; " UNSYNCED_TEXT_SHADOW, t->name);
    if (t->outside)
        stm_buf_puts(b, " " UNSYNCED_TEXT_OUTSIDE);
}

void unsynced_text_lines(buf_t *b, const char *indent, const syncable_table *tables, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        stm_buf_printf(b, "%s%s: ", indent, tables[i].name);
        s_reason(b, &tables[i]);
        stm_buf_putc(b, '\n');
    }
}

void unsynced_text_block(buf_t *b, int version, const syncable_table *tables, size_t n)
{
    if (n == 0)
        return;
    stm_buf_printf(b, "not synced at version %d (%zu table%s):\n", version, n, n == 1 ? "" : "s");
    unsynced_text_lines(b, "  ", tables, n);
}

void unsynced_text_json(jsonw_t *w, const syncable_table *tables, size_t n)
{
    stm_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "table");
        stm_jsonw_string(w, tables[i].name);
        stm_jsonw_key(w, "kind");
        stm_jsonw_string(w, stm_syncable_reason_name(tables[i].reason));
        buf_t why = BUF_INIT;
        s_reason(&why, &tables[i]);
        stm_jsonw_key(w, "reason");
        stm_jsonw_string(w, stm_buf_str(&why));
        stm_jsonw_key(w, "in_schema_set");
        stm_jsonw_bool(w, !tables[i].outside);
        if (tables[i].reason == SYNCABLE_VIRTUAL) {
            stm_buf_reset(&why);
            stm_buf_printf(&why, "%s_*", tables[i].name);
            stm_jsonw_key(w, "shadow_tables");
            stm_jsonw_string(w, stm_buf_str(&why));
        }
        stm_buf_free(&why);
        stm_jsonw_object_end(w);
    }
    stm_jsonw_array_end(w);
}

void unsynced_text_names(buf_t *b, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        stm_buf_printf(b, "%s%s", i ? ", " : "", names[i]);
}

void unsynced_text_keys_changed(buf_t *b, int from, int to, char *const *names, size_t n)
{
    if (n == 0)
        return;
    stm_buf_printf(b, "keys change rule between versions %d and %d (%zu table%s): ", from, to,
                   n, n == 1 ? "" : "s");
    unsynced_text_names(b, names, n);
    stm_buf_puts(b, "\n  rows synced before keep what they were: merged rows are not split "
                    "again, rows kept apart are not merged (not carried across versions "
                    "yet)\n");
}

void unsynced_text_per_device(buf_t *b, int version, char *const *names, size_t n)
{
    if (n == 0)
        return;
    stm_buf_printf(b, "keys chosen per device at version %d (%zu table%s): ", version, n,
                   n == 1 ? "" : "s");
    unsynced_text_names(b, names, n);
    stm_buf_puts(b, "\n  " UNSYNCED_TEXT_PER_DEVICE "\n");
}
