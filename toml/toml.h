/* toml.h - TOML 1.0: parse a document into a tree of values, build trees, emit them.
 *
 * The parser accepts exactly TOML 1.0.0 (it passes the toml-test 1.0.0 selection) and
 * refuses everything else with STM_EINPUT and a "NAME:LINE:COL: what is wrong" message;
 * LINE and COL are 1-based and COL counts characters, not bytes. Bounds: a document is at
 * most TOML_MAX_INPUT bytes and holds at most TOML_MAX_VALUES values and headers (so a
 * parsed tree costs at most about 240 MB besides its strings), and tables and arrays nest
 * at most TOML_MAX_DEPTH deep (counting the tables that dotted keys and headers create,
 * so recursion over a parsed tree stays shallow).
 *
 * A tree is owned by its root: tables and arrays own their values, and every accessor
 * below lends (a lent value must not be handed to another table or array). Multi-line
 * strings have their CRLF line endings normalized to LF.
 *
 * The emitter is deterministic: the same tree always gives the same bytes, and parsing
 * the result gives a tree stm_toml_equal to the original. In each table it writes first the
 * `key = value` lines (scalars, arrays that are not arrays of tables, and anything
 * flagged inline), then each sub-table as a [dotted.path] section, then each array of
 * tables as [[dotted.path]] sections; a table's own [header] is left out when it has no
 * key/value lines but does have sub-tables or arrays of tables. An array of tables
 * flagged inline becomes a multi-line array with one inline table per line; anything
 * nested inside an inline table or array is written on one line. Strings are basic
 * strings; a built string holding invalid UTF-8 gets U+FFFD in its place, since TOML
 * cannot hold it. */
#ifndef STM_TOML_H
#define STM_TOML_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOML_MAX_INPUT (1024u * 1024u * 1024u) /* bytes in one document */
#define TOML_MAX_DEPTH 256                     /* nesting of tables and arrays */
/* Values and [headers] in one document. A value costs about 60 bytes once parsed and
 * can take 2 in the text ("0,"): without a limit, 64 MB of text parsed into 1.9 GB. */
#define TOML_MAX_VALUES 4000000

typedef enum {
    TOML_TABLE,
    TOML_ARRAY,
    TOML_STRING,
    TOML_INTEGER,
    TOML_FLOAT,
    TOML_BOOL,
    TOML_DATETIME /* offset date-time */,
    TOML_DATETIME_LOCAL,
    TOML_DATE_LOCAL,
    TOML_TIME_LOCAL
} toml_type;

typedef struct toml_value toml_value; /* opaque */

typedef struct {
    int year, month, day, hour, minute, second;
    int nanosecond;     /* fraction, truncated to 9 digits */
    int offset_minutes; /* only for TOML_DATETIME; 0 for Z */
} toml_datetime;

/* Parsing. On error returns STM_EINPUT and err->msg is "NAME:LINE:COL: what is wrong"
   (1-based line and column; NAME is the name argument, e.g. a file path). *root is set
   only on success and is the caller's (stm_toml_destroy). */
STM_NODISCARD stm_err stm_toml_parse(const char *text, size_t len, const char *name,
                                     toml_value **root, stm_error *err);
/* Reads and parses path (base/readfile.h: a regular file of at most TOML_MAX_INPUT
   bytes); *root is the caller's on success. STM_EINPUT when it is missing or not a
   regular file, STM_ESYS when the system refuses; the message names the file. */
STM_NODISCARD stm_err stm_toml_parse_file(const char *path, toml_value **root, stm_error *err);
/* Frees the whole tree; sets *v NULL; safe on NULL. */
void stm_toml_destroy(toml_value **v);

/* The type of v. */
toml_type stm_toml_type_of(const toml_value *v);
/* "table", "string", ... as toml-test names them; static. */
const char *stm_toml_type_name(toml_type t);
/* Where the value started in the source (1-based); 0 if built. */
int stm_toml_line(const toml_value *v);
/* Column (characters, 1-based) where the value started; 0 if built. */
int stm_toml_column(const toml_value *v);
/* Number of keys in table t. */
size_t stm_toml_table_count(const toml_value *t);
/* The i-th key in insertion order, NUL-terminated, lent. */
const char *stm_toml_table_key(const toml_value *t, size_t i);
/* Length in bytes of the i-th key (a quoted key may hold \u0000). */
size_t stm_toml_table_key_len(const toml_value *t, size_t i);
/* The i-th value in insertion order; lent. */
toml_value *stm_toml_table_at(const toml_value *t, size_t i);
/* The value under key, NULL if absent; lent. */
toml_value *stm_toml_table_get(const toml_value *t, const char *key);
/* Number of elements of array a. */
size_t stm_toml_array_count(const toml_value *a);
/* The i-th element of a; lent. */
toml_value *stm_toml_array_at(const toml_value *a, size_t i);
/* NUL-terminated, lent; len may be NULL (strings may hold \u0000). */
const char *stm_toml_string(const toml_value *v, size_t *len);
/* The value of an integer. */
int64_t stm_toml_integer(const toml_value *v);
/* The value of a float. */
double stm_toml_float(const toml_value *v);
/* The value of a boolean. */
bool stm_toml_bool(const toml_value *v);
/* The fields of any of the four date/time types; lent. */
const toml_datetime *stm_toml_datetime_of(const toml_value *v);

/* Building (for the emitter and for tests). Every toml_new_* returns a value the caller owns
   until it is handed to a table or array, which then owns it. */
/* An empty table, the caller's. */
toml_value *stm_toml_new_table(void);
/* An empty array, the caller's. */
toml_value *stm_toml_new_array(void);
/* The caller's; copies len bytes of s (UTF-8; may hold NULs). */
toml_value *stm_toml_new_string(const char *s, size_t len);
/* The caller's. */
toml_value *stm_toml_new_integer(int64_t i);
/* The caller's. */
toml_value *stm_toml_new_float(double d);
/* The caller's. */
toml_value *stm_toml_new_bool(bool b);
/* The caller's; copies *dt. type is one of the four date/time types; the fields it uses
   must be in range (asserted), the others are ignored. */
toml_value *stm_toml_new_datetime(toml_type type, const toml_datetime *dt);
/* Takes v; replaces an existing key in place (freeing the old value). */
void stm_toml_table_set(toml_value *t, const char *key, toml_value *v);
/* Takes v. */
void stm_toml_array_push(toml_value *a, toml_value *v);
/* Style hint for the emitter: write table or array v inline. */
void stm_toml_set_inline(toml_value *v, bool is_inline);
/* Deep equality (tables by key regardless of order, floats by value, nan==nan). */
bool stm_toml_equal(const toml_value *a, const toml_value *b);

/* Emitting: returns a NUL-terminated TOML 1.0 document the caller frees. header may be NULL;
   otherwise each of its lines is written first as a "# " comment. root must be a table. */
char *stm_toml_emit(const toml_value *root, const char *header);

#endif
