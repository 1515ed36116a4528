#include "cli.h"
#include "sync/apply.h"
#include "sync/dbopen.h"
#include "lineage/cache.h"
#include "lineage/export.h"
#include "lineage/load.h"
#include "base/mem.h"
#include "lineage/schemaset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_fail(const char *cmd, const stm_error *err)
{
    fprintf(stderr, "stemma %s: %s\n", cmd, err->msg[0] ? err->msg : stm_strerror(err->code));
    switch (err->code) {
    case STM_OK:
        return CLI_OK;
    case STM_EUSAGE:
    case STM_EINPUT:
    case STM_ECORRUPT:
    case STM_EPROTO:
        return CLI_BAD_INPUT;
    case STM_EDB:
    case STM_ESYS:
        return CLI_FAILED;
    }
    return CLI_FAILED;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "stemma %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'stemma %s --help')\n", cmd);
    return CLI_BAD_INPUT;
}

int cli_bad_option(const char *cmd, const char *arg, int c)
{
    if (c == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

int cli_parse_format(const char *arg, unsigned allowed, cli_format *out)
{
    static const char *const names[] = {"text", "json", "toml"};
    for (int f = CLI_FORMAT_TEXT; f <= CLI_FORMAT_TOML; f++) {
        if ((allowed & (1u << f)) && strcmp(arg, names[f]) == 0) {
            *out = (cli_format)f;
            return 1;
        }
    }
    return 0;
}

const char *cli_cache_dir(void)
{
    static bool read;
    static char *dir;
    if (!read) {
        dir = stm_cache_dir_from_env();
        read = true;
    }
    return dir;
}

void cli_cache_warn(const char *warning)
{
    if (warning && *warning)
        fprintf(stderr, "stemma: warning: cache %s\n", warning);
}

int cli_parse_layout(const char *cmd, const char *arg, schemaset_layout *out)
{
    if (stm_layout_from_name(arg, out))
        return CLI_OK;
    return cli_usage_error(cmd, "--layout must be one of " LAYOUT_NAMES ", or auto, not '%s'", arg);
}

stm_err cli_migrate_open(const char *db, const char *schemas, schemaset_layout layout,
                         migrate_t **out, stm_error *err)
{
    stm_err rc = stm_migrate_open_layout(db, schemas, layout, cli_cache_dir(), out, err);
    if (rc == STM_OK)
        cli_cache_warn(stm_migrate_cache_warning(*out));
    return rc;
}

stm_err cli_load_lineage(const char *path, schemaset_layout layout, lineage_t **out, stm_error *err)
{
    char warning[CACHE_WARNING_MAX];
    stm_err rc = stm_load_history_layout(path, layout, cli_cache_dir(), out, NULL, warning, err);
    cli_cache_warn(warning);
    return rc;
}

stm_err cli_load_lenses(const char *path, schemaset_layout layout, lens_set_t **out, stm_error *err)
{
    char warning[CACHE_WARNING_MAX];
    stm_err rc = stm_load_history_layout(path, layout, cli_cache_dir(), NULL, out, warning, err);
    cli_cache_warn(warning);
    /* An exported file says what its migrations do when it was written with them. */
    if (rc == STM_OK && !*out)
        rc = stm_error_set(err, STM_EUSAGE,
                           "%s: this exported file does not say what its migrations do to the "
                           "data (written by an older stemma); export it again from the "
                           "directory of migrations, or give the directory",
                           path);
    return rc;
}

stm_err cli_write_output(const char *path, const char *text, stm_error *err)
{
    if (!path || strcmp(path, "-") == 0) {
        fputs(text, stdout);
        return fflush(stdout) == 0
                   ? STM_OK
                   : stm_error_set(err, STM_ESYS, "writing to stdout: %s", strerror(errno));
    }
    /* Write beside the target and rename over it, so a failed write (a full disk)
     * never leaves a half-written file where a good one was. */
    size_t plen = strlen(path);
    char *tmp = stm_malloc(plen + 16);
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        stm_err rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    stm_err rc = STM_OK;
    if (!ok) {
        rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

void cli_note_origin(const char *db, origin_change change)
{
    if (change != ORIGIN_KEPT)
        fprintf(stderr,
                "stemma: note: %s: %s; its own writes carry a new origin from now on (those "
                "from before keep theirs), so that none of them is lost\n",
                db, stm_origin_change_text(change));
}

stm_err cli_open_db(const char *path, store_t **out, stm_error *err)
{
    origin_change change = ORIGIN_KEPT;
    stm_err rc = stm_dbopen(path, out, &change, err);
    cli_note_origin(path, change);
    return rc;
}

void cli_json_id(jsonw_t *w, const char *key, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    stm_jsonw_key(w, key);
    stm_jsonw_string(w, hex);
}
