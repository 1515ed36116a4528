/* cli.h - what every stemma command shares: exit codes, the one-line error, and
 * loading a lineage from what the user named.
 *
 * Exit codes: 0 when the command did its job (whatever it found), 2 for bad usage or
 * bad input, 1 for any other failure. Errors are one line on stderr, "stemma CMD: ...". */
#ifndef STM_CLI_H
#define STM_CLI_H

#include "base/error.h"
#include "base/jsonw.h"
#include "lineage/layout.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"
#include "sync/migrate.h"
#include "sync/origin.h"
#include "sync/store.h"

#include <stdio.h>

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_BAD_INPUT = 2 };

/* A command: argv[0] is the command's name. Returns an exit code. */
typedef int (*cli_command_fn)(int argc, char **argv);

/* Prints "stemma CMD: message" from err and returns the exit code for its code. */
int cli_fail(const char *cmd, const stm_error *err);
/* Prints "stemma CMD: message" and a hint to use --help; returns CLI_BAD_INPUT. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The usage error for what getopt_long returned as c for arg: an option missing
 * its value (c == ':', which needs ':' to lead the option string) or one it does
 * not know. Returns CLI_BAD_INPUT. */
int cli_bad_option(const char *cmd, const char *arg, int c);

/* Sends request to the node of dir (its node.toml names the control endpoint) or at
 * control, and waits for its answer: *reply (NUL-terminated, *len bytes) is the
 * caller's to free. Returns CLI_OK, or the exit code after printing why (no node runs,
 * none answers). */
int cli_ask_node(const char *cmd, const char *dir, const char *control, const char *request,
                 char **reply, size_t *len);

/* Output formats a command may offer. */
typedef enum { CLI_FORMAT_TEXT, CLI_FORMAT_JSON, CLI_FORMAT_TOML } cli_format;
/* Parses --format's argument against the formats allowed (a mask of 1 << cli_format);
 * false when it is not one of them. */
int cli_parse_format(const char *arg, unsigned allowed, cli_format *out);

/* The cache directory (lineage/cache.h) the environment names, read once; NULL: no
 * cache. Lent for the life of the process. */
const char *cli_cache_dir(void);
/* Says warning (a cache_report's) on stderr in one line; nothing when it is "". */
void cli_cache_warn(const char *warning);

/* Parses --layout's argument (a name of lineage/layout.h, or "auto") into *out. Returns
 * CLI_OK, or the usage error for cmd after saying it. */
int cli_parse_layout(const char *cmd, const char *arg, schemaset_layout *out);

/* stm_migrate_open_layout with the cache the environment names, its warning (if any)
 * said on stderr. */
stm_err cli_migrate_open(const char *db, const char *schemas, schemaset_layout layout,
                         migrate_t **out, stm_error *err);

/* A lineage from a schema directory read in layout (LAYOUT_AUTO: detected; migrations
 * run in memory, or read from the cache) or an exported TOML file, whichever path is.
 * *out is the caller's (stm_lineage_destroy). */
stm_err cli_load_lineage(const char *path, schemaset_layout layout, lineage_t **out,
                         stm_error *err);
/* What each migration of the schema directory at path does to the data (lineage/lens.h,
 * from the cache when it holds them), or what an exported file says they do; STM_EUSAGE
 * for an exported file that does not say (an older stemma's). *out is the caller's
 * (stm_lens_destroy). */
stm_err cli_load_lenses(const char *path, schemaset_layout layout, lens_set_t **out,
                        stm_error *err);

/* Says on stderr, in one line, that db took a new origin and why (nothing for
 * ORIGIN_KEPT). */
void cli_note_origin(const char *db, origin_change change);
/* Opens a database stemma has set up (stemma migrate does that), its format checked
 * and what the application changed since stemma last looked made operations. It is
 * checked through a read-only connection first: opening it for writing switches it to
 * WAL mode, which must not happen to a file the command then refuses. *out is the
 * caller's (stm_store_destroy). */
stm_err cli_open_db(const char *path, store_t **out, stm_error *err);

/* Writes text to path, or to stdout when path is NULL or "-". */
stm_err cli_write_output(const char *path, const char *text, stm_error *err);

/* Writes the member key with id in hex (64 digits) to w. */
void cli_json_id(jsonw_t *w, const char *key, const stm_id *id);

#endif
