/* choose.h - which learned peers a node dials: a choice by the distance of node ids
 * that keeps a sparse mesh connected (docs/architecture.md, "A sparse mesh").
 *
 * Ids are compared as 256-bit numbers by XOR, as Kademlia does. The bucket of a peer is
 * how many leading bits its id shares with this node's: half of all ids fall in bucket
 * 0, a quarter in bucket 1, and so on, so n random ids fill about log2(n) buckets. When
 * every node keeps a peer in every bucket that holds one, any node reaches any other by
 * steps that each share more leading bits with the target (the peer kept in the
 * target's bucket shares at least one more with it than this node does): the mesh of
 * such nodes is connected, in about log2(n) steps.
 * The choice is deterministic, so the same knowledge gives the same peers, and spread:
 * in a bucket, the candidate a hash of both ids ranks first, so nodes pick different
 * ones and none is picked by many (the nearest id would be everyone's pick in its half).
 *
 * Pure functions of their arguments: nothing here knows sockets or peers. */
#ifndef STM_CHOOSE_H
#define STM_CHOOSE_H

#include "base/id.h"

#include <stddef.h>

/* Buckets: 0 to 255, and CHOOSE_SAME for an id equal to self. */
#define CHOOSE_BUCKETS 256
#define CHOOSE_SAME 256

/* The leading bits other's id shares with self's. */
int stm_choose_bucket(const stm_id *self, const stm_id *other);

/* Picks up to want of the ncand candidates to dial, given the nhave peers kept already:
 * each pick is the candidate in the bucket that holds the fewest kept and picked peers,
 * the farther bucket first among equals, and in it the one ranked first by the hash of
 * self's id and its own. Writes the
 * candidates' indexes to picks (room for want, the caller's) in the order picked and
 * returns how many. Candidates equal to self are never picked. */
size_t stm_choose_pick(const stm_id *self, const stm_id *have, size_t nhave, const stm_id *cand,
                       size_t ncand, size_t want, size_t *picks);

#endif
