/* sections.h - a migration and its rollback in one file, as goose and dbmate write
 * them, split at their marker lines.
 *
 *   goose:   -- +goose Up           dbmate:  -- migrate:up
 *            CREATE TABLE t(x);              CREATE TABLE t(x);
 *            -- +goose Down                  -- migrate:down
 *            DROP TABLE t;                   DROP TABLE t;
 *
 * The rule, on the file's normalised text (schemaset.h: LF line ends): a marker line,
 * its newline included, belongs to no section; a section is every byte from just after
 * its marker line to the start of the next marker line, or to the end of the file. So
 * "-- +goose Up\n" + A + "-- +goose Down\n" + B, with A empty or ending in a newline,
 * reads back as A and B exactly: a stemma-layout migration and its .down.sql wrapped
 * that way keep their text, and so their version ids.
 *
 * A marker line is, as the tools read them:
 *   goose   "--" at the start of the line, optional blanks, "+goose", optional blanks,
 *           "Up" or "Down" in any case, optional blanks (blanks: spaces and tabs);
 *   dbmate  "--" at the start of the line, optional blanks, "migrate:up" or
 *           "migrate:down", then the end of the line, or blanks and options
 *           (transaction:false), which go with the line: stemma runs every migration
 *           in a transaction of its own.
 * Other goose annotations (StatementBegin, StatementEnd, NO TRANSACTION) stay in the
 * text: they are SQL comments to SQLite, and keeping them keeps the rule one sentence,
 * so that a section copied out to a stemma-layout file keeps its version. "ENVSUB ON"
 * is refused: goose would run text with environment variables put in, and stemma
 * cannot know what ran.
 *
 * Before the Up marker only blank lines and "--" comments may stand (both tools refuse
 * anything else); they belong to no section. The Up marker is required, once; the
 * Down marker is optional (no Down marker: no rollback), once, after Up. */
#ifndef STM_SECTIONS_H
#define STM_SECTIONS_H

#include "layout.h"
#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>

/* The sections of text (len bytes, normalised) of the file at path (for messages),
 * laid out for layout (LAYOUT_GOOSE or LAYOUT_DBMATE). *up is the caller's, *down too,
 * or NULL when the file has no Down marker; both NUL-terminated, lengths in *up_len and
 * *down_len. STM_EINPUT with "PATH:LINE: ..." when the markers break the rules above. */
STM_NODISCARD stm_err stm_sections_split(schemaset_layout layout, const char *path,
                                         const char *text, size_t len, char **up, size_t *up_len,
                                         char **down, size_t *down_len, stm_error *err);

/* True when text holds a marker line of layout (LAYOUT_GOOSE or LAYOUT_DBMATE), Up or
 * Down: what detection goes by. */
bool stm_sections_marked(schemaset_layout layout, const char *text, size_t len);

#endif
