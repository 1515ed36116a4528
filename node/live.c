/* live.c - what a running node changes without a restart: trusted keys and peers,
 * asked for on the control socket (`stemma trust`, `stemma peer`) or read again from
 * node.toml and known_peers on SIGHUP (node_internal.h). The loop in node.c calls in
 * here; nothing here sleeps or polls. */
#include "node_internal.h"
#include "config.h"
#include "known_peers.h"
#include "peer.h"
#include "peerlist.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
/* ---- node.toml's [peers] as the node knows it ---- */

void stm_node_peers_push(node_t *n, const config_peer *spec)
{
    n->peers = stm_realloc(n->peers, (n->npeers + 1) * sizeof *n->peers);
    n->peers[n->npeers] = *spec;
    n->peers[n->npeers++].endpoint = stm_strdup(spec->endpoint);
}

void stm_node_peers_clear(node_t *n)
{
    for (size_t i = 0; i < n->npeers; i++)
        stm_config_peer_free(&n->peers[i]);
    free(n->peers);
    n->peers = NULL;
    n->npeers = 0;
}

/* Whether list[0..count) holds spec: the same key, or for a peer without one the same
 * endpoint. */
static bool s_peers_has(const config_peer *list, size_t count, const config_peer *spec)
{
    for (size_t i = 0; i < count; i++)
        if (spec->has_key ? list[i].has_key && stm_id_equal(&list[i].key, &spec->key)
                          : !list[i].has_key && strcmp(list[i].endpoint, spec->endpoint) == 0)
            return true;
    return false;
}

/* ---- requests that change the node (the control socket's "trust ...") ---- */

#define S_DISTRUST_REASON "its key is no longer trusted (stemma trust remove)"
#define S_REMOVED_REASON "no longer a peer, and its key no longer trusted (stemma peer remove)"

/* A trust request, answered by the ZAP handler's key set (persisted in known_peers),
 * then carried to the peers: a peer whose key was removed is refused and its DEALER
 * closed; one whose key is trusted again is asked at once. */
static char *s_trust_change(node_t *n, const char *request)
{
    zap_change change;
    stm_id key;
    char *reply = stm_zap_request(n->zap, request, &change, &key);
    if (change == ZAP_CHANGED_NOTHING)
        return reply;
    char z85[KEYS_Z85_LEN + 1], sid[STM_ID_SHORT_LEN + 1];
    stm_keys_to_z85(&key, z85);
    stm_id_short(&key, sid);
    peer_t *p = stm_mesh_find(n->mesh, &key);
    stm_mesh_touch(n->mesh); /* a known peer may be chosen now, or no longer */
    if (change == ZAP_CHANGED_ADDED) {
        stm_log_event(STM_LOG_INFO, "trust-added", sid, "now trusting %s (stemma trust add)", z85);
        if (p)
            stm_peer_trust_again(p, stm_monotime_ms());
    } else {
        stm_log_event(STM_LOG_INFO, "trust-removed", sid,
                      "no longer trusting %s (stemma trust remove): new connections with it are "
                      "refused, messages on its open one dropped",
                      z85);
        if (p)
            stm_peer_distrust(p, S_DISTRUST_REASON);
    }
    return reply;
}

/* A peer request, answered by changing node.toml, then carried out: a peer added is
 * trusted and dialled at once; a peer removed is no longer dialled, and unless
 * known_peers still trusts its key, no longer trusted (refused as by trust remove). */
static char *s_peer_change(node_t *n, const char *request)
{
    peerlist_result r;
    char *reply = stm_peerlist_request(n->dir, request, &r);
    const config_peer *spec = &r.peer;
    peer_t *p = NULL;
    if (r.change != PEERLIST_NOTHING)
        p = spec->has_key ? stm_mesh_find(n->mesh, &spec->key)
                          : stm_mesh_find_endpoint(n->mesh, spec->endpoint);
    if (r.change == PEERLIST_ADDED) {
        if (spec->has_key) /* peerlist put it in [security] trusted too */
            stm_zap_trust_as(n->zap, &spec->key, ZAP_FROM_CONFIG);
        if (!p) {
            p = stm_mesh_add(n->mesh, spec->has_key ? &spec->key : NULL, spec->endpoint,
                             MESH_CONFIGURED);
        } else {
            stm_peer_trust_again(p, stm_monotime_ms());
            stm_mesh_set_configured(n->mesh, p, true, stm_monotime_ms());
        }
        stm_log_event(STM_LOG_INFO, "peer-added", stm_peer_short_id(p),
                      "%s (stemma peer add): dialling it", spec->endpoint);
        stm_node_peers_push(n, spec);
    } else if (r.change == PEERLIST_REMOVED) {
        if (spec->has_key) {
            stm_zap_untrust(n->zap, &spec->key);
            if (r.still_trusted)
                stm_zap_trust_as(n->zap, &spec->key, ZAP_FROM_KNOWN);
        }
        stm_log_event(STM_LOG_INFO, "peer-removed", p ? stm_peer_short_id(p) : NULL,
                      "%s (stemma peer remove)%s", spec->endpoint,
                      r.still_trusted ? ": its key is still trusted by known_peers" : "");
        if (p && !r.still_trusted)
            stm_peer_distrust(p, S_REMOVED_REASON);
        /* Known from now on: with its key still trusted, it may be chosen or dial in. */
        if (p)
            stm_mesh_set_configured(n->mesh, p, false, stm_monotime_ms());
        /* As stemma trust remove says: under trust on first use the key comes back. */
        if (spec->has_key && !r.still_trusted && stm_zap_tofu(n->zap)) {
            buf_t b = BUF_INIT;
            stm_buf_puts(&b, reply);
            stm_buf_puts(&b, "warning: trust_on_first_use is on: its key is trusted again "
                             "when it next connects\n");
            free(reply);
            reply = stm_buf_detach(&b);
        }
        for (size_t i = 0; i < n->npeers; i++)
            if (s_peers_has(&n->peers[i], 1, spec)) {
                stm_config_peer_free(&n->peers[i]);
                n->peers[i] = n->peers[--n->npeers];
                break;
            }
    }
    stm_peerlist_result_clear(&r);
    return reply;
}

/* Requests that change the node: "trust ..." and "peer ...". */
char *stm_node_control_change(void *ctx, const char *request)
{
    node_t *n = ctx;
    if (strcmp(request, "compact") == 0) {
        /* A pass at once (compactor.h); the client waits for the passes' count to move. */
        store_counts counts;
        stm_error err = {0};
        buf_t b = BUF_INIT;
        if (stm_store_counts(stm_local_store(n->local), &counts, &err) != STM_OK) {
            stm_buf_printf(&b, "error: %s\n", err.msg);
        } else {
            stm_compactor_start(n->compactor, stm_monotime_ms());
            stm_buf_printf(&b, "compaction pass started after %llu passes\n",
                           (unsigned long long)counts.compact_passes);
        }
        return stm_buf_detach(&b);
    }
    bool trust = strncmp(request, "trust", 5) == 0 && (request[5] == ' ' || !request[5]);
    bool peer = strncmp(request, "peer", 4) == 0 && (request[4] == ' ' || !request[4]);
    if (!trust && !peer)
        return NULL;
    if (trust && n->insecure)
        return stm_strdup("error: this node runs insecure ([security] insecure = true): no key "
                          "is checked, so none can be trusted or removed\n");
    return trust ? s_trust_change(n, request) : s_peer_change(n, request);
}

/* ---- SIGHUP: node.toml and known_peers read again ---- */

#define S_RELOAD_REASON "its key is no longer trusted (node.toml or known_peers, SIGHUP)"

/* A key trusted or no longer trusted after a reload: carried to its peer as a trust
 * request would be. */
static void s_reload_key(void *ctx, const stm_id *key, bool added)
{
    node_t *n = ctx;
    char z85[KEYS_Z85_LEN + 1], sid[STM_ID_SHORT_LEN + 1];
    stm_keys_to_z85(key, z85);
    stm_id_short(key, sid);
    peer_t *p = stm_mesh_find(n->mesh, key);
    stm_log_event(STM_LOG_INFO, added ? "trust-added" : "trust-removed", sid, "%s %s (SIGHUP)",
                  added ? "now trusting" : "no longer trusting", z85);
    stm_mesh_touch(n->mesh);
    if (p && added)
        stm_peer_trust_again(p, stm_monotime_ms());
    else if (p)
        stm_peer_distrust(p, S_RELOAD_REASON);
}

/* The settings whose lines differ between two stm_config_values_text, as
 * "section.key, ..." (the caller's; "" when none), but for those applied at once
 * (trust on first use, the log level). */
static char *s_settings_changed(const char *was, const char *now)
{
    buf_t b = BUF_INIT;
    while (*was && *now) {
        size_t lw = strcspn(was, "\n"), ln = strcspn(now, "\n");
        size_t name = strcspn(now, " ");
        bool live = strncmp(now, "security.trust_on_first_use ", 28) == 0 ||
                    strncmp(now, "node.log_level ", 15) == 0;
        if ((lw != ln || memcmp(was, now, lw) != 0) && !live)
            stm_buf_printf(&b, "%s%.*s", b.len ? ", " : "", (int)name, now);
        was += lw + (was[lw] == '\n');
        now += ln + (now[ln] == '\n');
    }
    stm_buf_puts(&b, "");
    return stm_buf_detach(&b);
}

/* Reads node.toml and known_peers again and applies the differences in trust and in
 * [peers] by the same paths as `stemma trust` and `stemma peer`; names the other
 * settings changed, which need a restart. A file that cannot be read changes nothing. */
static void s_reload(node_t *n, log_level base);

/* Logged at the log_level node.toml now says (or, unreadable, the one before), and at
 * the thread's sink's (base). */
void stm_node_reload(node_t *n)
{
    log_level base = stm_log_raise_min(n->log_level);
    s_reload(n, base);
    stm_log_set_min(base);
}

static void s_reload(node_t *n, log_level base)
{
    node_config cfg;
    stm_id *known = NULL;
    size_t nknown = 0;
    stm_error err = {0};
    stm_err rc = stm_config_load(n->dir, &cfg, &err);
    if (rc == STM_OK)
        rc = stm_known_peers_load(n->dir, &known, &nknown, &err);
    if (rc != STM_OK) {
        stm_log_event(STM_LOG_ERROR, "reload", NULL,
                      "SIGHUP: %s; running on with what was read before", err.msg);
        stm_config_destroy(&cfg);
        return;
    }
    n->log_level = cfg.log_level;
    stm_log_set_min(base > n->log_level ? base : n->log_level);
    stm_log_event(STM_LOG_INFO, "reload", NULL, "SIGHUP: reading node.toml and known_peers");
    if (!n->insecure)
        stm_zap_reload(n->zap, &cfg, known, nknown, s_reload_key, n);
    for (size_t i = 0; i < cfg.npeers; i++) {
        const config_peer *spec = &cfg.peers[i];
        for (size_t j = 0; j < n->npeers && spec->has_key; j++)
            if (s_peers_has(&n->peers[j], 1, spec) &&
                strcmp(n->peers[j].endpoint, spec->endpoint) != 0)
                stm_log_event(STM_LOG_WARN, "reload", NULL,
                              "node.toml moves a peer from %s to %s: that needs a restart "
                              "(or stemma peer remove, then add)",
                              n->peers[j].endpoint, spec->endpoint);
        if (s_peers_has(n->peers, n->npeers, spec) || (!spec->has_key && !n->insecure))
            continue;
        peer_t *p = spec->has_key ? stm_mesh_find(n->mesh, &spec->key)
                                  : stm_mesh_find_endpoint(n->mesh, spec->endpoint);
        if (!p)
            p = stm_mesh_add(n->mesh, spec->has_key ? &spec->key : NULL, spec->endpoint,
                             MESH_CONFIGURED);
        else
            stm_mesh_set_configured(n->mesh, p, true, stm_monotime_ms());
        stm_log_event(STM_LOG_INFO, "peer-added", stm_peer_short_id(p),
                      "%s (node.toml, SIGHUP): dialling it", spec->endpoint);
    }
    for (size_t i = 0; i < n->npeers; i++)
        if (!s_peers_has(cfg.peers, cfg.npeers, &n->peers[i]))
            stm_log_event(STM_LOG_INFO, "peer-removed", NULL,
                          "%s (node.toml, SIGHUP): not dialled from its next start; %s",
                          n->peers[i].endpoint,
                          n->peers[i].has_key && stm_zap_is_trusted(n->zap, &n->peers[i].key)
                              ? "its key is still trusted"
                              : "its key is no longer trusted");
    stm_node_peers_clear(n);
    for (size_t i = 0; i < cfg.npeers; i++)
        stm_node_peers_push(n, &cfg.peers[i]);
    char *now = stm_config_values_text(&cfg);
    char *changed = s_settings_changed(n->settings, now);
    if (changed[0])
        stm_log_event(STM_LOG_WARN, "reload", NULL,
                      "node.toml changes %s: that needs a restart (running on with the values "
                      "read at start)",
                      changed);
    free(changed);
    free(now);
    free(known);
    stm_config_destroy(&cfg);
}
