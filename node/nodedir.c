/* nodedir.c - a node made from the directory `stemma init` set up (node.h,
 * stm_node_open): what `stemma node --dir` runs and what an application embeds. */
#include "node.h"
#include "config.h"
#include "keys.h"
#include "known_peers.h"

#include <stdlib.h>

stm_err stm_node_open(const char *dir, node_t **out, stm_error *err)
{
    node_config cfg;
    node_keys *keys = NULL;
    stm_id *known = NULL;
    size_t nknown = 0;
    stm_err rc = stm_config_load(dir, &cfg, err);
    if (rc == STM_OK)
        rc = stm_keys_load(dir, &keys, err);
    if (rc == STM_OK)
        rc = stm_known_peers_load(dir, &known, &nknown, err);
    if (rc == STM_OK) {
        node_options o = {.config = &cfg, .keys = keys, .known = known, .nknown = nknown};
        rc = stm_node_new(&o, out, err);
    }
    free(known);
    stm_keys_destroy(&keys);
    stm_config_destroy(&cfg);
    return rc;
}
