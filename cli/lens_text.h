/* lens_text.h - what each migration does to the data (lineage/lens.h), for people and
 * for programs: `stemma history --schemas DIR --lenses`. */
#ifndef STM_CLI_LENS_TEXT_H
#define STM_CLI_LENS_TEXT_H

#include "base/buf.h"
#include "base/jsonw.h"
#include "lineage/lens.h"

/* Appends the changes of the migration to version, one indented line each
 * ("    users.akey  renamed from users.key"), or a line saying it could not be probed. */
void cli_lens_text(buf_t *b, const lens_set_t *lenses, int version);
/* Writes "changes": [...] (and "probed": false with "why" when it could not be probed)
 * into the JSON object being written. */
void cli_lens_json(jsonw_t *w, const lens_set_t *lenses, int version);

#endif
