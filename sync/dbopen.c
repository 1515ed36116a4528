/* dbopen.c - a database stemma has set up, opened (dbopen.h). */
#include "dbopen.h"
#include "apply.h"

stm_err stm_dbopen(const char *path, store_t **out, origin_change *change, stm_error *err)
{
    if (change)
        *change = ORIGIN_KEPT;
    store_t *check = NULL;
    stm_err rc = stm_store_open(path, STORE_OPEN_READONLY, &check, err);
    if (rc != STM_OK)
        return rc;
    bool prepared = stm_store_is_prepared(check);
    stm_store_destroy(&check);
    if (!prepared)
        return stm_error_set(err, STM_EINPUT,
                             "%s: not set up for stemma (no stemma tables); run 'stemma migrate "
                             "--db %s --schemas DIR' first",
                             path, path);
    /* Read-write even to read, so that closing removes the -wal and -shm files. */
    rc = stm_store_open(path, STORE_OPEN_EXISTING, out, err);
    if (rc == STM_OK)
        rc = stm_store_check_format(*out, err);
    if (rc == STM_OK) {
        applier_t *applier = stm_applier_new(*out, NULL, NULL);
        rc = stm_applier_catch_up(applier, err);
        if (change)
            *change = stm_applier_origin_change(applier);
        stm_applier_destroy(&applier);
    }
    if (rc != STM_OK)
        stm_store_destroy(out);
    return rc;
}
