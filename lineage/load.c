/* load.c - a history from a directory or an exported file (load.h). */
#include "load.h"
#include "export.h"
#include "schemaset.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

stm_err stm_load_history(const char *path, const char *cache_dir, lineage_t **lineage,
                         lens_set_t **lenses, char *warning, stm_error *err)
{
    return stm_load_history_layout(path, LAYOUT_AUTO, cache_dir, lineage, lenses, warning, err);
}

stm_err stm_load_history_layout(const char *path, schemaset_layout layout, const char *cache_dir,
                                lineage_t **lineage, lens_set_t **lenses, char *warning,
                                stm_error *err)
{
    if (warning)
        warning[0] = '\0';
    struct stat st;
    if (stat(path, &st) != 0)
        return stm_error_set(err, STM_EINPUT, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode) && layout != LAYOUT_AUTO)
        return stm_error_set(err, STM_EINPUT,
                             "%s: not a directory of migrations, so it has no layout (%s was "
                             "given)",
                             path, stm_layout_name(layout));
    if (!S_ISDIR(st.st_mode)) {
        if (!lenses)
            return stm_export_read_file(path, lineage, err);
        lineage_t *l = NULL;
        stm_err rc = stm_export_read_file_lenses(path, &l, lenses, err);
        if (rc == STM_OK && lineage)
            *lineage = l;
        else
            stm_lineage_destroy(&l);
        return rc;
    }
    schemaset_t *set = NULL;
    stm_err rc = stm_schemaset_load_layout(path, layout, &set, err);
    cache_report report;
    if (rc == STM_OK) {
        rc = stm_cache_derive(set, cache_dir, lineage, lenses, &report, err);
        if (warning)
            snprintf(warning, CACHE_WARNING_MAX, "%s", report.warning);
    }
    stm_schemaset_destroy(&set);
    return rc;
}
