#include "seqmark.h"
#include "config.h"
#include "base/safefile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

stm_err stm_seqmark_read(const char *dir, stm_id *origin, uint64_t *seq, bool *found,
                         stm_error *err)
{
    *found = false;
    char *path = stm_config_path(dir, SEQMARK_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        stm_err rc = errno == ENOENT ? STM_OK
                                     : stm_error_set(err, STM_ESYS, "%s: %s", path,
                                                     strerror(errno));
        free(path);
        return rc;
    }
    char hex[STM_ID_HEX_LEN + 2];
    uint64_t n = 0;
    int got = fscanf(f, "%65s %" SCNu64, hex, &n);
    fclose(f);
    free(path);
    if (got == 2 && strlen(hex) == STM_ID_HEX_LEN && stm_id_from_hex(hex, origin)) {
        *seq = n;
        *found = true;
    }
    return STM_OK;
}

stm_err stm_seqmark_write(const char *dir, const stm_id *origin, uint64_t seq, stm_error *err)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(origin, hex);
    char line[STM_ID_HEX_LEN + 32];
    int len = snprintf(line, sizeof line, "%s %" PRIu64 "\n", hex, seq);
    char *path = stm_config_path(dir, SEQMARK_FILE);
    stm_err rc = stm_safefile_write(path, line, (size_t)len, 0600, false, err);
    free(path);
    return rc;
}
