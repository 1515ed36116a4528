/* wireutil.h - what the tests of node/wire and node/peer share: a HELLO encoded as
 * stemma sent one before vector deltas, its vector whole. */
#ifndef STM_WIREUTIL_H
#define STM_WIREUTIL_H

#include "node/wire.h"

/* Appends to msg a HELLO of node carrying v whole (stm_vector_out_whole), and lenses
 * (NULL: none). */
static inline void wu_encode_hello_lenses(buf_t *msg, const stm_id *node, const char *endpoint,
                                          const char *name, const lineage_t *lineage,
                                          const vector_t *v, int min_supported,
                                          const wire_peer *peers, size_t npeers, bool reply,
                                          const lens_set_t *lenses)
{
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_whole(&vo, v);
    wire_hello_out h = {.endpoint = endpoint,
                        .name = name,
                        .lineage = lineage,
                        .vector = &vo,
                        .min_supported = min_supported,
                        .peers = peers,
                        .npeers = npeers,
                        .reply = reply,
                        .lenses = lenses};
    stm_wire_encode_hello(msg, node, &h);
    stm_buf_free(&vo.entries);
}

/* The same without lenses. */
static inline void wu_encode_hello(buf_t *msg, const stm_id *node, const char *endpoint,
                                   const char *name, const lineage_t *lineage, const vector_t *v,
                                   int min_supported, const wire_peer *peers, size_t npeers,
                                   bool reply)
{
    wu_encode_hello_lenses(msg, node, endpoint, name, lineage, v, min_supported, peers, npeers,
                           reply, NULL);
}

#endif
