/* Tests of node/known_peers: keys appended and read back; the file as a person may have
 * edited it (comments, blank lines, hex, no final newline); a line that is not a key,
 * one too long, NUL bytes, each refused at its line; a key's lines removed, the rest
 * kept. And the trusted set built on it (node/zap): where each key comes from, trust
 * requests adding and removing, refusing to remove what node.toml trusts. */
#include "base/buf.h"
#include "node/keys.h"
#include "node/known_peers.h"
#include "node/zap.h"
#include "nodeutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_known_peers(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    stm_id *keys = NULL;
    size_t n = 99;
    /* None yet. */
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_OK);
    assert_int_equal(n, 0);
    assert_null(keys);
    stm_id a, b;
    memset(a.bytes, 1, sizeof a.bytes);
    assert_true(stm_keys_parse(NU_CURVE_PUBLIC, &b));
    assert_int_equal(stm_known_peers_add(dir, &a, &err), STM_OK);
    assert_int_equal(stm_known_peers_add(dir, &b, &err), STM_OK);
    tu_no_temporaries(dir);
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_OK);
    assert_int_equal(n, 2);
    assert_true(stm_id_equal(&keys[0], &a));
    assert_true(stm_id_equal(&keys[1], &b));
    free(keys);
    /* The file: a comment saying what it is, then one Z85 key per line. */
    char *path = tu_path(dir, "known_peers");
    char *text = tu_read(path, NULL);
    assert_int_equal(text[0], '#');
    char z85[KEYS_Z85_LEN + 1];
    stm_keys_to_z85(&a, z85);
    buf_t want = BUF_INIT;
    stm_buf_printf(&want, "\n%s\n%s\n", z85, NU_CURVE_PUBLIC);
    size_t tl = strlen(text);
    assert_true(tl > want.len);
    assert_string_equal(text + tl - want.len, stm_buf_str(&want));
    free(text);

    /* Edited by hand: comments, blank lines, hex, spaces, no final newline; the next
     * key goes on a line of its own. */
    stm_buf_reset(&want);
    stm_buf_puts(&want, "# mine\n\n   \n  ");
    for (int i = 0; i < KEYS_BYTES; i++)
        stm_buf_printf(&want, "%02X", a.bytes[i]);
    stm_buf_printf(&want, "  \r\n#");
    for (int i = 0; i < 600; i++)
        stm_buf_putc(&want, '-');
    stm_buf_printf(&want, "\n%s", NU_CURVE_PUBLIC);
    tu_write(dir, "known_peers", stm_buf_str(&want));
    stm_id c;
    memset(c.bytes, 0xee, sizeof c.bytes);
    assert_int_equal(stm_known_peers_add(dir, &c, &err), STM_OK);
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_OK);
    assert_int_equal(n, 3);
    assert_true(stm_id_equal(&keys[0], &a));
    assert_true(stm_id_equal(&keys[1], &b));
    assert_true(stm_id_equal(&keys[2], &c));
    free(keys);

    /* A line that is not a key. */
    tu_write(dir, "known_peers", "# ok\nHelloWorldHelloWorldHelloWorldHelloWorld\nnot a key\n");
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_EINPUT);
    assert_null(keys);
    assert_int_equal(n, 0);
    tu_expect_msg(&err, dir, "known_peers", ":3: not a key", NULL);
    stm_buf_reset(&want);
    for (int i = 0; i < 600; i++)
        stm_buf_putc(&want, 'x');
    tu_write(dir, "known_peers", stm_buf_str(&want));
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "known_peers", ":1: line too long", NULL);
    /* A NUL byte, in a key's line or in a long comment: damaged, not blank. */
    static const char nuls[][16] = {"\0\0\0\0\n", "# ok\n\0x\n"};
    static const size_t nul_lens[] = {5, 8};
    for (int i = 0; i < 2; i++) {
        FILE *fp = fopen(path, "wb");
        fwrite(nuls[i], 1, nul_lens[i], fp);
        fclose(fp);
        assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_EINPUT);
        tu_expect_msg(&err, dir, "known_peers", i ? ":2: holds a NUL byte" : ":1: holds a NUL byte",
                      NULL);
    }
    stm_buf_reset(&want);
    stm_buf_puts(&want, "# ");
    for (int i = 0; i < 600; i++)
        stm_buf_putc(&want, 'x');
    FILE *fp = fopen(path, "wb");
    fwrite(want.data, 1, want.len, fp);
    fwrite("\0 more\n", 1, 7, fp);
    fclose(fp);
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "known_peers", ":1: holds a NUL byte", NULL);

    stm_buf_free(&want);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}

static void test_known_peers_remove(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    bool removed = true;
    stm_id a, b;
    memset(a.bytes, 1, sizeof a.bytes);
    assert_true(stm_keys_parse(NU_CURVE_PUBLIC, &b));
    /* No file: nothing removed, and no file made. */
    assert_int_equal(stm_known_peers_remove(dir, &a, &removed, &err), STM_OK);
    assert_false(removed);
    char *path = tu_path(dir, "known_peers");
    assert_null(tu_read(path, NULL));
    /* A comment, the key twice (once in hex, with blanks), another key: both of the
     * key's lines go, the rest stays as written. */
    buf_t text = BUF_INIT;
    stm_buf_puts(&text, "# kept\n  ");
    for (int i = 0; i < KEYS_BYTES; i++)
        stm_buf_printf(&text, "%02x", a.bytes[i]);
    char z85[KEYS_Z85_LEN + 1];
    stm_keys_to_z85(&a, z85);
    stm_buf_printf(&text, " \n%s\n%s\n", NU_CURVE_PUBLIC, z85);
    FILE *fp = fopen(path, "wb");
    fwrite(text.data, 1, text.len, fp);
    fclose(fp);
    assert_int_equal(stm_known_peers_remove(dir, &a, &removed, &err), STM_OK);
    assert_true(removed);
    tu_no_temporaries(dir);
    char *now = tu_read(path, NULL);
    assert_string_equal(now, "# kept\n" NU_CURVE_PUBLIC "\n");
    free(now);
    assert_int_equal(stm_known_peers_remove(dir, &a, &removed, &err), STM_OK);
    assert_false(removed);
    stm_buf_free(&text);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}

/* A trust request to z; its reply freed, what changed returned. */
static zap_change s_request(zap_t *z, const char *request, const char *want)
{
    zap_change change;
    stm_id key;
    char *reply = stm_zap_request(z, request, &change, &key);
    assert_non_null(reply);
    if (!strstr(reply, want))
        fail_msg("%s: %s (wanted %s)", request, reply, want);
    free(reply);
    return change;
}

static void test_trusted_set(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    node_config cfg;
    stm_config_init(&cfg, dir);
    stm_id a, b, c;
    memset(a.bytes, 1, sizeof a.bytes);
    memset(b.bytes, 2, sizeof b.bytes);
    memset(c.bytes, 3, sizeof c.bytes);
    stm_config_add_trusted(&cfg, &a);
    config_peer peer = {.endpoint = "tcp://127.0.0.1:1", .has_key = true, .key = b};
    cfg.peers = &peer;
    cfg.npeers = 1;
    /* a from node.toml and known_peers: node.toml's wins. */
    zap_t *z = stm_zap_new(&cfg, &a, 1);
    cfg.peers = NULL;
    cfg.npeers = 0;
    zap_from from;
    assert_true(stm_zap_lookup(z, &a, &from));
    assert_int_equal(from, ZAP_FROM_CONFIG);
    assert_true(stm_zap_lookup(z, &b, &from));
    assert_int_equal(from, ZAP_FROM_PEER);
    assert_false(stm_zap_is_trusted(z, &c));
    char za[KEYS_Z85_LEN + 1], zb[KEYS_Z85_LEN + 1], zc[KEYS_Z85_LEN + 1];
    stm_keys_to_z85(&a, za);
    stm_keys_to_z85(&b, zb);
    stm_keys_to_z85(&c, zc);
    char req[128];
    /* Added: trusted at once, and in known_peers. */
    snprintf(req, sizeof req, "trust add %s", zc);
    assert_int_equal(s_request(z, req, "trusting"), ZAP_CHANGED_ADDED);
    assert_true(stm_zap_lookup(z, &c, &from));
    assert_int_equal(from, ZAP_FROM_KNOWN);
    assert_int_equal(s_request(z, req, "trusted already (known_peers)"), ZAP_CHANGED_NOTHING);
    stm_error err = {0};
    stm_id *keys = NULL;
    size_t n = 0;
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_OK);
    assert_int_equal(n, 1);
    assert_true(stm_id_equal(&keys[0], &c));
    free(keys);
    /* Listed in key order, each with its source. */
    char *list = stm_zap_list_text(z);
    char want[256];
    snprintf(want, sizeof want, "%s node.toml [security] trusted\n", za);
    assert_non_null(strstr(list, want));
    snprintf(want, sizeof want, "%s node.toml [peers]\n", zb);
    assert_non_null(strstr(list, want));
    assert_non_null(strstr(list, "# 3 keys trusted; trust on first use is off"));
    free(list);
    /* What node.toml trusts is not removed; a key in hex is the same key. */
    snprintf(req, sizeof req, "trust remove %s", za);
    assert_int_equal(s_request(z, req, "error: "), ZAP_CHANGED_NOTHING);
    assert_true(stm_zap_is_trusted(z, &a));
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&b, hex);
    snprintf(req, sizeof req, "trust remove %s", hex);
    assert_int_equal(s_request(z, req, "node.toml [peers]"), ZAP_CHANGED_NOTHING);
    /* Removed: untrusted at once, and out of known_peers. */
    snprintf(req, sizeof req, "trust remove %s", zc);
    assert_int_equal(s_request(z, req, "no longer trusting"), ZAP_CHANGED_REMOVED);
    assert_false(stm_zap_is_trusted(z, &c));
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_OK);
    assert_int_equal(n, 0);
    free(keys);
    assert_int_equal(s_request(z, req, "error: "), ZAP_CHANGED_NOTHING);
    /* Not a key, not a trust request at all. */
    assert_int_equal(s_request(z, "trust add nope", "error: not a key"), ZAP_CHANGED_NOTHING);
    assert_int_equal(s_request(z, "trust", "error: a trust request"), ZAP_CHANGED_NOTHING);
    zap_change change;
    stm_id key;
    assert_null(stm_zap_request(z, "trusty", &change, &key));
    assert_null(stm_zap_request(z, "stats", &change, &key));
    stm_zap_destroy(&z);
    stm_config_destroy(&cfg);
    tu_remove_tree(dir);
    free(dir);
}

/* What stm_zap_reload told: keys added and removed, in order. */
typedef struct {
    stm_id keys[8];
    bool added[8];
    int n;
} s_changes;

static void s_changed(void *ctx, const stm_id *key, bool added)
{
    s_changes *c = ctx;
    assert_true(c->n < 8);
    c->keys[c->n] = *key;
    c->added[c->n++] = added;
}

static void test_trusted_set_reload(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    node_config cfg;
    stm_config_init(&cfg, dir);
    stm_id k[5];
    for (int i = 0; i < 5; i++)
        memset(k[i].bytes, i + 1, sizeof k[i].bytes);
    /* Trusted: 1 and 2 by node.toml, 3 by known_peers. */
    stm_config_add_trusted(&cfg, &k[0]);
    stm_config_add_trusted(&cfg, &k[1]);
    zap_t *z = stm_zap_new(&cfg, &k[2], 1);
    /* Now: 2 by node.toml, 3 and 5 by known_peers, 4 by [peers], trust on first use. */
    node_config now;
    stm_config_init(&now, dir);
    stm_config_add_trusted(&now, &k[1]);
    config_peer peer = {.endpoint = "tcp://127.0.0.1:1", .has_key = true, .key = k[3]};
    now.peers = &peer;
    now.npeers = 1;
    now.trust_on_first_use = true;
    stm_id known[2] = {k[4], k[2]};
    s_changes c = {0};
    stm_zap_reload(z, &now, known, 2, s_changed, &c);
    now.peers = NULL;
    now.npeers = 0;
    /* In key order: 1 removed, 4 and 5 added; 2 and 3 unchanged. */
    assert_int_equal(c.n, 3);
    assert_true(stm_id_equal(&c.keys[0], &k[0]) && !c.added[0]);
    assert_true(stm_id_equal(&c.keys[1], &k[3]) && c.added[1]);
    assert_true(stm_id_equal(&c.keys[2], &k[4]) && c.added[2]);
    zap_from from;
    assert_false(stm_zap_is_trusted(z, &k[0]));
    assert_true(stm_zap_lookup(z, &k[3], &from));
    assert_int_equal(from, ZAP_FROM_PEER);
    char *list = stm_zap_list_text(z);
    assert_non_null(strstr(list, "# 4 keys trusted; trust on first use is on"));
    free(list);
    /* The same again: nothing changes. */
    c.n = 0;
    now.peers = &peer;
    now.npeers = 1;
    stm_zap_reload(z, &now, known, 2, s_changed, &c);
    now.peers = NULL;
    now.npeers = 0;
    assert_int_equal(c.n, 0);
    stm_zap_destroy(&z);
    stm_config_destroy(&now);
    stm_config_destroy(&cfg);
    tu_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_peers),
        cmocka_unit_test(test_known_peers_remove),
        cmocka_unit_test(test_trusted_set),
        cmocka_unit_test(test_trusted_set_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
