/* life.c - a node made and destroyed (node.h): its directory locked, its database
 * opened, its sockets bound, the descriptors counted (fdbudget.h), the peers node.toml
 * names put in its mesh; and all of it closed again in order. The loop that runs it is
 * node.c's. */
#include "node.h"
#include "node_internal.h"
#include "beacon.h"
#include "control.h"
#include "dirlock.h"
#include "endpoint.h"
#include "fdbudget.h"
#include "inbox.h"
#include "keys.h"
#include "local.h"
#include "mesh.h"
#include "zap.h"
#include "zsock.h"
#include "base/clock.h"
#include "base/mem.h"
#include "sync/inbound.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static stm_err s_bind_sockets(node_t *n, const node_config *cfg, stm_error *err)
{
    n->ctx = zmq_ctx_new();
    if (!n->ctx)
        return stm_zsock_error(err, "creating the ZeroMQ context");
    stm_err rc = STM_OK;
    /* The ZAP handler has to be there before the first CURVE connection. */
    if (!n->insecure)
        rc = stm_zap_bind(n->zap, n->ctx, err);
    if (rc == STM_OK)
        rc = stm_inbox_new(n->ctx, cfg->bind, n->insecure, n->secret, &n->inbox, err);
    if (rc == STM_OK)
        rc = stm_control_new(n->ctx, cfg->control, &n->control, err);
    return rc;
}

/* The name HELLOs give: the setting, else the machine's host name (cut to the length a
 * name may have, control characters made '?', as a peer would refuse them). */
static char *s_device_name(const char *setting)
{
    char host[256] = "";
    if (!setting || !setting[0]) {
        if (gethostname(host, sizeof host) != 0)
            host[0] = '\0';
        host[sizeof host - 1] = '\0';
        host[CONFIG_MAX_NAME] = '\0';
        for (char *c = host; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        setting = host;
    }
    return stm_strdup(setting);
}

/* LAN discovery's socket. The beacon carries the port the inbox is bound to, never
 * advertise: a node that hears it dials the address the beacon came from, which on a
 * LAN reaches the node even where advertise names it otherwise (a public address, a
 * name the LAN does not resolve); advertise still travels in HELLOs. */
static stm_err s_open_beacon(node_t *n, const node_config *cfg, stm_error *err)
{
    beacon_options o = {
        .port = cfg->discovery_port,
        .interval_ms = cfg->discovery_interval_ms,
        .broadcast = cfg->discovery_broadcast,
        .self = {.id = n->id, .insecure = n->insecure},
    };
    o.self.port = (uint16_t)stm_beacon_mesh_port(stm_inbox_endpoint(n->inbox),
                                                 cfg->discovery_broadcast, &n->no_beacon_why);
    return stm_beacon_new(&o, &n->beacon, err);
}

stm_err stm_node_new(const node_options *o, node_t **out, stm_error *err)
{
    const node_config *cfg = o->config;
    /* Before anything in NODE_DIR is touched: a second node there stops here, leaving
     * the database, the sockets and known_peers to the first. */
    dirlock_t *lock = NULL;
    stm_err locked = stm_dirlock_acquire(cfg->dir, &lock, err);
    if (locked != STM_OK)
        return locked;
    node_t *n = stm_calloc(1, sizeof *n);
    n->lock = lock;
    n->dir = stm_strdup(cfg->dir);
    n->settings = stm_config_values_text(cfg);
    for (size_t i = 0; i < cfg->npeers; i++)
        stm_node_peers_push(n, &cfg->peers[i]);
    n->insecure = cfg->insecure;
    n->log_level = cfg->log_level;
    n->policy = cfg->policy;
    n->deltas = cfg->vector_deltas;
    n->local_poll_ms = cfg->local_poll_ms;
    n->reconnect_max_ms = cfg->reconnect_max_ms;
    peer_timing timing = {
        .window = cfg->window,
        .batch_ops = cfg->batch_ops,
        .reconnect_min_ms = cfg->reconnect_min_ms,
        .reconnect_max_ms = cfg->reconnect_max_ms,
        .peer_timeout_ms = cfg->peer_timeout_ms,
        .heartbeat_ms = cfg->heartbeat_ms,
        /* A pruned peer is grafted once it holds what we lack and we have not moved on
         * for a heartbeat: our other path stopped. */
        .lazy_ms = cfg->heartbeat_ms,
    };
    n->name = s_device_name(cfg->name);
    n->id = *stm_keys_public(o->keys);
    stm_id_short(&n->id, n->short_id);
    stm_keys_to_z85(&n->id, n->key_z85);
    n->secret = sodium_malloc(32);
    memcpy(n->secret, stm_keys_secret(o->keys), 32);
    sodium_mprotect_readonly(n->secret);
    n->inbound = stm_inbound_new(cfg->busy_timeout_ms);
    /* node.toml's trusted keys, its peers' and those in known_peers, alike. */
    n->zap = stm_zap_new(cfg, o->known, o->nknown);
    char *db = stm_config_resolve(cfg, cfg->db), *schemas = stm_config_resolve(cfg, cfg->schemas);
    schemaset_layout layout = LAYOUT_AUTO;
    if (cfg->layout) /* checked when node.toml was read */
        (void)stm_layout_from_name(cfg->layout, &layout);
    stm_err rc = stm_local_open(db, schemas, layout, n->inbound, &n->local, err);
    if (rc == STM_OK) {
        stm_local_set_max_clock_ahead(n->local, cfg->max_clock_ahead_ms);
        stm_local_set_policy(n->local, &cfg->policy);
        n->policy_retry = true; /* the policy may have changed since they were parked */
    }
    free(db);
    free(schemas);
    if (rc == STM_OK)
        rc = s_bind_sockets(n, cfg, err);
    if (rc == STM_OK) {
        /* Counted once the database and the sockets are open: what is left is the peers'. */
        mesh_limits limits = {
            .max_learned = cfg->max_learned_peers,
            .max_active = stm_fdbudget_peers(cfg->npeers, cfg->max_learned_peers),
            .trial_ms = cfg->peer_timeout_ms + cfg->reconnect_max_ms,
            .retry_ms = 6 * cfg->reconnect_max_ms,
        };
        n->mesh = stm_mesh_new(&n->id, &timing, &limits, n->inbox);
    }
    if (rc == STM_OK) {
        /* What peers are told: the setting; else where the inbox is bound (its port
         * resolved), unless that is a wildcard, which they could not dial. */
        const char *bound = stm_inbox_endpoint(n->inbox);
        n->advertise = stm_strdup(cfg->advertise && cfg->advertise[0] ? cfg->advertise
                                  : stm_endpoint_is_wildcard(bound)   ? ""
                                                                      : bound);
    }
    if (rc == STM_OK && cfg->discovery)
        rc = s_open_beacon(n, cfg, err);
    compactor_options co = {.enabled = cfg->compact,
                            .interval_ms = cfg->compact_interval_ms,
                            .known_peer_hours = cfg->known_peer_hours};
    n->compactor = stm_compactor_new(&co, stm_monotime_ms());
    for (size_t i = 0; i < cfg->npeers && rc == STM_OK; i++) {
        const config_peer *spec = &cfg->peers[i];
        if (!spec->has_key && !n->insecure) {
            rc = stm_error_set(err, STM_EINPUT,
                               "peer %s: give its public key as KEY@ENDPOINT (or run insecure)",
                               spec->endpoint);
            break;
        }
        /* Its key is trusted (stm_zap_new): a peer we were told to reach may reach us. */
        stm_mesh_add(n->mesh, spec->has_key ? &spec->key : NULL, spec->endpoint, MESH_CONFIGURED);
    }
    if (rc != STM_OK) {
        stm_node_destroy(&n);
        return rc;
    }
    n->view = (control_view){.id = &n->id,
                             .secure = !n->insecure,
                             .endpoint = stm_inbox_endpoint(n->inbox),
                             .name = n->name,
                             .local = n->local,
                             .inbound = n->inbound,
                             .zap = n->zap,
                             .mesh = n->mesh,
                             .drops = &n->drops,
                             .beacon = n->beacon,
                             .compactor = n->compactor,
                             .change = stm_node_control_change,
                             .change_ctx = n};
    *out = n;
    return STM_OK;
}

const char *stm_node_endpoint(const node_t *n)
{
    return stm_inbox_endpoint(n->inbox);
}

void stm_node_destroy(node_t **self_p)
{
    node_t *n = *self_p;
    if (!n)
        return;
    /* Every socket is closed before the context ends (zmq_ctx_term waits for them). */
    stm_mesh_destroy(&n->mesh);
    stm_inbox_destroy(&n->inbox);
    stm_control_destroy(&n->control);
    stm_zap_destroy(&n->zap);
    stm_beacon_destroy(&n->beacon);
    stm_compactor_destroy(&n->compactor);
    stm_pollfd_destroy(&n->pollfd); /* step.c's */
    /* zmq_ctx_term fails only when a signal interrupts it: it is asked again. */
    while (n->ctx && zmq_ctx_term(n->ctx) != 0 && zmq_errno() == EINTR)
        ;
    stm_local_destroy(&n->local);
    /* After the store, whose busy handler it is. Batches never stored were never
     * acknowledged: their senders send them again. */
    stm_inbound_destroy(&n->inbound);
    if (n->secret)
        sodium_free(n->secret);
    /* Last: until now no other node may start here, so the control socket removed
     * above was this node's own (control.h). */
    stm_dirlock_release(&n->lock);
    free(n->advertise);
    free(n->name);
    free(n->clone_seen);
    free(n->poll_items);
    free(n->poll_peers);
    free(n->dir);
    free(n->settings);
    stm_node_peers_clear(n);
    free(n);
    *self_p = NULL;
}
