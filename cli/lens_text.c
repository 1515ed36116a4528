/* lens_text.c - a migration's changes to the data, as text and JSON (lens_text.h). */
#include "lens_text.h"

#include <stdbool.h>

void cli_lens_text(buf_t *b, const lens_set_t *lenses, int version)
{
    const char *why;
    if (!stm_lens_probed(lenses, version, &why)) {
        stm_buf_printf(b, "      (not derived: the migration fails on marked rows: %s)\n", why);
        return;
    }
    size_t n;
    const lens_change *c = stm_lens_changes(lenses, version, &n);
    for (size_t i = 0; i < n; i++) {
        stm_buf_printf(b, "      %s%s%s  %s", c[i].table, c[i].column ? "." : "",
                       c[i].column ? c[i].column : "", stm_lens_kind_name(c[i].kind));
        if (c[i].from_table)
            stm_buf_printf(b, " from %s.%s", c[i].from_table, c[i].from_column);
        stm_buf_putc(b, '\n');
    }
}

void cli_lens_json(jsonw_t *w, const lens_set_t *lenses, int version)
{
    const char *why;
    bool probed = stm_lens_probed(lenses, version, &why);
    stm_jsonw_key(w, "derived");
    stm_jsonw_bool(w, probed);
    if (!probed) {
        stm_jsonw_key(w, "why");
        stm_jsonw_string(w, why);
    }
    stm_jsonw_key(w, "changes");
    stm_jsonw_array_begin(w);
    size_t n;
    const lens_change *c = stm_lens_changes(lenses, version, &n);
    for (size_t i = 0; i < n; i++) {
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "kind");
        stm_jsonw_string(w, stm_lens_kind_name(c[i].kind));
        stm_jsonw_key(w, "table");
        stm_jsonw_string(w, c[i].table);
        stm_jsonw_key(w, "column");
        stm_jsonw_string(w, c[i].column);
        stm_jsonw_key(w, "from_table");
        stm_jsonw_string(w, c[i].from_table);
        stm_jsonw_key(w, "from_column");
        stm_jsonw_string(w, c[i].from_column);
        stm_jsonw_object_end(w);
    }
    stm_jsonw_array_end(w);
}
