/* peerlist.c - node.toml's [peers] changed by `stemma peer` (peerlist.h). */
#include "peerlist.h"
#include "keys.h"
#include "known_peers.h"
#include "base/buf.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

void stm_peerlist_result_clear(peerlist_result *r)
{
    stm_config_peer_free(&r->peer);
    memset(r, 0, sizeof *r);
}

/* The index in cfg->peers of the peer named by text (a key, or an endpoint); -1. */
static long s_find(const node_config *cfg, const char *text)
{
    stm_id key;
    bool by_key = stm_keys_parse(text, &key);
    for (size_t i = 0; i < cfg->npeers; i++) {
        const config_peer *p = &cfg->peers[i];
        if (by_key ? p->has_key && stm_id_equal(&p->key, &key) : strcmp(p->endpoint, text) == 0)
            return (long)i;
    }
    return -1;
}

static void s_add(node_config *cfg, const char *text, peerlist_result *out, buf_t *b)
{
    stm_error err = {0};
    config_peer peer;
    if (stm_config_parse_peer(text, cfg->insecure, &peer, &err) != STM_OK) {
        stm_buf_printf(b, "error: %s\n", err.msg);
        return;
    }
    char z85[KEYS_Z85_LEN + 1] = "";
    if (peer.has_key)
        stm_keys_to_z85(&peer.key, z85);
    long at = s_find(cfg, peer.has_key ? z85 : peer.endpoint);
    if (at < 0 && peer.has_key)
        at = s_find(cfg, peer.endpoint);
    if (at >= 0) {
        char *was = stm_config_peer_format(&cfg->peers[at]);
        stm_buf_printf(b, "error: %s is a peer already (%s): remove it first to change it\n",
                       peer.has_key ? z85 : peer.endpoint, was);
        free(was);
        stm_config_peer_free(&peer);
        return;
    }
    if (cfg->npeers >= CONFIG_MAX_PEERS) {
        stm_buf_printf(b, "error: node.toml lists %d peers, its limit\n", CONFIG_MAX_PEERS);
        stm_config_peer_free(&peer);
        return;
    }
    stm_config_add_peer(cfg, &peer);
    if (peer.has_key)
        stm_config_add_trusted(cfg, &peer.key); /* as init --peer does */
    if (stm_config_save(cfg, &err) != STM_OK) {
        stm_buf_printf(b, "error: %s\n", err.msg);
        stm_config_peer_free(&peer);
        return;
    }
    char *line = stm_config_peer_format(&peer);
    stm_buf_printf(b, "peer %s added to %s/%s\n", line, cfg->dir, CONFIG_FILE);
    free(line);
    out->change = PEERLIST_ADDED;
    out->peer = peer;
}

static void s_remove(node_config *cfg, const char *text, peerlist_result *out, buf_t *b)
{
    long at = s_find(cfg, text);
    if (at < 0) {
        stm_buf_printf(b, "error: no peer %s in %s/%s\n", text, cfg->dir, CONFIG_FILE);
        return;
    }
    config_peer peer = cfg->peers[at];
    memmove(&cfg->peers[at], &cfg->peers[at + 1],
            (cfg->npeers - (size_t)at - 1) * sizeof *cfg->peers);
    cfg->npeers--;
    for (size_t i = 0; peer.has_key && i < cfg->ntrusted; i++)
        if (stm_id_equal(&cfg->trusted[i], &peer.key)) {
            memmove(&cfg->trusted[i], &cfg->trusted[i + 1],
                    (cfg->ntrusted - i - 1) * sizeof *cfg->trusted);
            cfg->ntrusted--;
            break;
        }
    stm_error err = {0};
    if (stm_config_save(cfg, &err) != STM_OK) {
        stm_buf_printf(b, "error: %s\n", err.msg);
        stm_config_peer_free(&peer);
        return;
    }
    char *line = stm_config_peer_format(&peer);
    stm_buf_printf(b, "peer %s removed from %s/%s\n", line, cfg->dir, CONFIG_FILE);
    free(line);
    stm_id *known = NULL;
    size_t nknown = 0;
    if (peer.has_key && stm_known_peers_load(cfg->dir, &known, &nknown, &err) == STM_OK)
        for (size_t i = 0; i < nknown && !out->still_trusted; i++)
            out->still_trusted = stm_id_equal(&known[i], &peer.key);
    free(known);
    if (out->still_trusted) {
        char z85[KEYS_Z85_LEN + 1];
        stm_keys_to_z85(&peer.key, z85);
        stm_buf_printf(b,
                       "warning: its key is still in known_peers, so it may still connect "
                       "(stemma trust remove %s)\n",
                       z85);
    }
    out->change = PEERLIST_REMOVED;
    out->peer = peer;
}

char *stm_peerlist_request(const char *dir, const char *request, peerlist_result *out)
{
    memset(out, 0, sizeof *out);
    bool add = strncmp(request, "peer add ", 9) == 0;
    bool remove = strncmp(request, "peer remove ", 12) == 0;
    if (!add && !remove)
        return strncmp(request, "peer", 4) == 0 && (request[4] == ' ' || !request[4])
                   ? stm_strdup("error: a peer request is 'peer add KEY@ENDPOINT' or 'peer "
                                "remove KEY'\n")
                   : NULL;
    node_config cfg;
    stm_error err = {0};
    buf_t b = BUF_INIT;
    if (stm_config_load(dir, &cfg, &err) != STM_OK)
        stm_buf_printf(&b, "error: %s\n", err.msg);
    else if (add)
        s_add(&cfg, request + 9, out, &b);
    else
        s_remove(&cfg, request + 12, out, &b);
    stm_config_destroy(&cfg);
    return stm_buf_detach(&b);
}
