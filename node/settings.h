/* settings.h - the table of node.toml's settings: the one place where a setting's
 * section, key, type, default, bounds and doc are written. config.h says what the
 * table drives (init, load, save, the user guide); config.c does it by walking the
 * rows.
 *
 * A row names the field of node_config that holds its value by offset, so that one
 * loop defaults, reads, writes or frees every setting. A new setting is a row in
 * settings.c and a field in node_config, nothing more. The table is node/'s own: the
 * row layout is shared with config.c only, as a description of a setting (a value
 * type, like stm_id), never as anyone's state. Everything here is static and lent. */
#ifndef STM_SETTINGS_H
#define STM_SETTINGS_H

#include "config.h"
#include "base/buf.h"
#include "base/error.h"
#include "toml/toml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a setting holds: its TOML type, its C type in node_config, how it is checked. */
typedef enum {
    SETTINGS_PATH,     /* char *: a file or directory; relative ones are relative to NODE_DIR */
    SETTINGS_ENDPOINT, /* char *: an endpoint the node binds (stm_endpoint_check) */
    SETTINGS_BIND,     /* char *: the same, or "" for none (the node only dials) */
    SETTINGS_NAME,     /* char *: a name for people, at most CONFIG_MAX_NAME bytes, no
                          control character; "" allowed */
    SETTINGS_DIAL,     /* char *: an endpoint peers dial (stm_endpoint_check without `*`, and
                          no wildcard address), or "" for none */
    SETTINGS_IPV4,     /* char *: an IPv4 address in dotted quads (inet_pton), never empty */
    SETTINGS_LAYOUT,   /* char *: a schema set's layout, a name of lineage/layout.h or "auto" */
    SETTINGS_BOOL,     /* bool */
    SETTINGS_INT,      /* int, from min to max */
    SETTINGS_WORD,     /* an enum (int-sized: policy_mode, log_level), written as the row's
                          words[value] */
    SETTINGS_PEERS,    /* config_peer * and a size_t length: "KEY@ENDPOINT"s, at most max */
    SETTINGS_KEYS,     /* stm_id * and a size_t length: public keys, at most max, each once */
} settings_type;

/* One setting: one row of the table. */
typedef struct {
    const char *section; /* its [section] */
    const char *key;     /* its name in the section */
    settings_type type;
    size_t field;     /* offsetof its value in node_config */
    size_t size;      /* sizeof that value, checked against what type says */
    size_t count;     /* PEERS, KEYS: offsetof the list's length in node_config */
    const char *text; /* the default of a string, "NODE_DIR" in it standing for the
                         node's directory made absolute; NULL: required, no default */
    int64_t value;    /* the default of a bool, an integer or a word (its index) */
    int64_t min, max; /* INT: its bounds; PEERS, KEYS: max is the most entries */
    const char *const *words; /* WORD: the words, indexed by the enum's values */
    size_t nwords;
    const char *doc;  /* what it is, in one line without '|': node.toml's comment and
                         the user guide's row */
} settings_row;

/* One [section], in the order node.toml and the user guide give them. */
typedef struct {
    const char *name;
    const char *doc; /* what the section holds, one line */
} settings_section;

/* Two integer settings of one section that must agree: lower below upper (strict), or
 * not above it. */
typedef struct {
    const char *section, *lower, *upper;
    bool strict;
} settings_rule;

extern const settings_section stm_settings_sections[];
extern const size_t stm_settings_nsections;
/* Grouped by section, in stm_settings_sections' order. */
extern const settings_row stm_settings_rows[];
extern const size_t stm_settings_nrows;
extern const settings_rule stm_settings_rules[];
extern const size_t stm_settings_nrules;
/* The words of a policy, indexed by policy_mode; of a log level, by log_level. */
extern const char *const stm_settings_policy_words[];
extern const size_t stm_settings_npolicy_words;
extern const char *const stm_settings_log_words[];
extern const size_t stm_settings_nlog_words;

/* The row of section.key (key len bytes: a key from a file may hold NULs), or NULL. */
const settings_row *stm_settings_find(const char *section, const char *key, size_t len);

/* Where row s keeps its value in cfg, whose C type is size bytes (asserted against
 * the row: a row whose type and field disagree is a programming bug). Lent; writable
 * though cfg is const, for stm_config_save and stm_config_destroy share the one accessor. */
void *stm_settings_field(const node_config *cfg, const settings_row *s, size_t size);
/* Where a PEERS or KEYS row keeps its list's length in cfg. */
size_t *stm_settings_length(const node_config *cfg, const settings_row *s);
/* Sets row s of cfg to its default (a string's copied, NODE_DIR in it replaced by
 * abs_dir); lists are left as they are. */
void stm_settings_set_default(node_config *cfg, const settings_row *s, const char *abs_dir);

/* Appends the row's doc, with what stm_settings_rules ask of it ("; more than heartbeat_ms"). */
void stm_settings_put_doc(buf_t *b, const settings_row *s);
/* Appends what values the row takes ("integer, 1 to 86400000"); md: literals in
 * `backquotes`, for Markdown. */
void stm_settings_put_type(buf_t *b, const settings_row *s, bool md);
/* Appends the row's default as TOML writes it; nothing for a row without one. */
void stm_settings_put_default(buf_t *b, const settings_row *s);

/* Every name in the parsed node.toml root is one the table has: the sections at the
 * top and the keys in each (a known section that is not a table is left to the
 * caller). STM_EINPUT, for the first name that is not, with one line
 * "PATH:LINE: unknown section [x]; did you mean [y]?" (or key, or the names there
 * are when none is near). */
STM_NODISCARD stm_err stm_settings_check_names(const toml_value *root, const char *path,
                                               stm_error *err);

#endif
