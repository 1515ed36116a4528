/* Tests of node/config, NODE_DIR/node.toml: KEY@ENDPOINT peers; the defaults, a save ->
 * load round trip of every setting, init -> load -> save -> load, a file written before
 * the table of settings; every kind of bad node.toml refused at its line and column,
 * every integer just outside its bounds; the user guide's settings equal to the table's;
 * the most trusted keys read fast; a FIFO in place of any of the node's files refused,
 * not waited on. The table itself and unknown names are in test_settings.c. */
#include "base/buf.h"
#include "node/config.h"
#include "node/known_peers.h"
#include "node/settings.h"
#include "node/keys.h"
#include "nodeutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void test_peers(void **state)
{
    (void)state;
    stm_error err = {0};
    config_peer p;
    stm_id doc;
    assert_true(stm_keys_parse(NU_CURVE_PUBLIC, &doc));
    /* The Z85 key holds an '@' of its own; its length says where it ends. */
    buf_t text = BUF_INIT;
    stm_buf_printf(&text, "%s@tcp://10.0.0.2:7420", NU_CURVE_PUBLIC);
    assert_int_equal(stm_config_parse_peer(stm_buf_str(&text), false, &p, &err), STM_OK);
    assert_true(p.has_key);
    assert_true(stm_id_equal(&p.key, &doc));
    assert_string_equal(p.endpoint, "tcp://10.0.0.2:7420");
    char *back = stm_config_peer_format(&p);
    assert_string_equal(back, stm_buf_str(&text));
    free(back);
    stm_config_peer_free(&p);
    /* Hex, written back in Z85. */
    stm_buf_reset(&text);
    for (int i = 0; i < KEYS_BYTES; i++)
        stm_buf_printf(&text, "%02x", doc.bytes[i]);
    stm_buf_puts(&text, "@ipc:///tmp/peer.sock");
    assert_int_equal(stm_config_parse_peer(stm_buf_str(&text), false, &p, &err), STM_OK);
    assert_true(stm_id_equal(&p.key, &doc));
    back = stm_config_peer_format(&p);
    stm_buf_reset(&text);
    stm_buf_printf(&text, "%s@ipc:///tmp/peer.sock", NU_CURVE_PUBLIC);
    assert_string_equal(back, stm_buf_str(&text));
    free(back);
    stm_config_peer_free(&p);
    /* No key: only when insecure. */
    assert_int_equal(stm_config_parse_peer("tcp://h:1", false, &p, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "'tcp://h:1' has no key"));
    assert_null(p.endpoint);
    assert_int_equal(stm_config_parse_peer("tcp://h:1", true, &p, &err), STM_OK);
    assert_false(p.has_key);
    back = stm_config_peer_format(&p);
    assert_string_equal(back, "tcp://h:1");
    free(back);
    stm_config_peer_free(&p);
    /* Broken ones. */
    assert_int_equal(stm_config_parse_peer("abc@tcp://h:1", true, &p, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "is not KEY@ENDPOINT"));
    assert_int_equal(
        stm_config_parse_peer("HelloWorldHelloWorldHelloWorldHelloWor~d@tcp://h:1", true, &p, &err),
        STM_EINPUT);
    assert_non_null(strstr(err.msg, "is not valid Z85"));
    assert_int_equal(
        stm_config_parse_peer("HelloWorldHelloWorldHelloWorldHelloWorld@tcp://h", true, &p, &err),
        STM_EINPUT);
    assert_non_null(strstr(err.msg, "has no port"));
    assert_int_equal(
        stm_config_parse_peer("HelloWorldHelloWorldHelloWorldHelloWorld@", true, &p, &err),
        STM_EINPUT);
    assert_int_equal(
        stm_config_parse_peer("HelloWorldHelloWorldHelloWorldHelloWorld@tcp://*:1", true, &p, &err),
        STM_EINPUT);
    stm_buf_free(&text);
}

static void test_config_defaults(void **state)
{
    (void)state;
    node_config cfg;
    stm_config_init(&cfg, "some/node/");
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    buf_t want = BUF_INIT;
    stm_buf_printf(&want, "ipc://%s/some/node/control.sock", cwd);
    assert_string_equal(cfg.control, stm_buf_str(&want));
    assert_string_equal(cfg.dir, "some/node/");
    assert_string_equal(cfg.bind, "tcp://127.0.0.1:7420");
    assert_null(cfg.db);
    assert_null(cfg.schemas);
    assert_int_equal(cfg.npeers, 0);
    assert_int_equal(cfg.ntrusted, 0);
    assert_false(cfg.insecure);
    assert_false(cfg.trust_on_first_use);
    assert_int_equal(cfg.policy.mode[RELATION_SAME], POLICY_FULL);
    assert_int_equal(cfg.policy.mode[RELATION_ANCESTOR], POLICY_FULL);
    assert_int_equal(cfg.policy.mode[RELATION_DESCENDANT], POLICY_FULL);
    assert_int_equal(cfg.policy.mode[RELATION_DIVERGENT], POLICY_SHARED);
    assert_int_equal(cfg.policy.mode[RELATION_UNRELATED], POLICY_NONE);
    assert_int_equal(cfg.policy.min_supported_version, 0);
    assert_int_equal(cfg.policy.max_version_gap, 0);
    assert_int_equal(cfg.heartbeat_ms, 1000);
    assert_int_equal(cfg.peer_timeout_ms, 5000);
    assert_int_equal(cfg.reconnect_min_ms, 100);
    assert_int_equal(cfg.reconnect_max_ms, 5000);
    assert_int_equal(cfg.batch_ops, 2000);
    assert_int_equal(cfg.window, 4);
    assert_int_equal(cfg.local_poll_ms, 200);
    assert_int_equal(cfg.busy_timeout_ms, 1000);
    /* LAN discovery is opt-in. */
    assert_false(cfg.discovery);
    assert_int_equal(cfg.discovery_port, 7422);
    assert_int_equal(cfg.discovery_interval_ms, 1000);
    assert_string_equal(cfg.discovery_broadcast, "255.255.255.255");
    stm_config_destroy(&cfg);
    stm_config_destroy(&cfg); /* safe twice */
    /* An absolute directory, and "." */
    stm_config_init(&cfg, "/srv/node");
    assert_string_equal(cfg.control, "ipc:///srv/node/control.sock");
    stm_config_destroy(&cfg);
    stm_config_init(&cfg, ".");
    stm_buf_reset(&want);
    stm_buf_printf(&want, "ipc://%s/control.sock", cwd);
    assert_string_equal(cfg.control, stm_buf_str(&want));
    stm_config_destroy(&cfg);
    stm_buf_free(&want);

    /* The policy a judge without a node.toml takes is the table's too. */
    stm_config_init(&cfg, ".");
    peer_policy p;
    memset(&p, 0x5a, sizeof p);
    stm_config_policy_default(&p);
    assert_memory_equal(&p, &cfg.policy, sizeof p);
    stm_config_destroy(&cfg);
}

static void test_config_round_trip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    node_config cfg, back;
    stm_config_init(&cfg, dir);
    stm_config_set_str(&cfg.db, "data/my \"app\" \\ é\t.db");
    stm_config_set_str(&cfg.schemas, "/abs/schemas");
    stm_config_set_str(&cfg.bind, "tcp://*:9000");
    stm_config_set_str(&cfg.control, "tcp://127.0.0.1:9001");
    config_peer p = {0};
    stm_error err = {0};
    buf_t text = BUF_INIT;
    stm_buf_printf(&text, "%s@tcp://[::1]:7000", NU_CURVE_PUBLIC);
    assert_int_equal(stm_config_parse_peer(stm_buf_str(&text), false, &p, &err), STM_OK);
    stm_config_add_peer(&cfg, &p);
    stm_config_add_trusted(&cfg, &p.key);
    stm_config_add_trusted(&cfg, &p.key); /* once only */
    stm_config_peer_free(&p);
    assert_int_equal(stm_config_parse_peer("ipc:///run/peer.sock", true, &p, &err), STM_OK);
    stm_config_add_peer(&cfg, &p);
    stm_config_peer_free(&p);
    stm_id k;
    memset(k.bytes, 0xab, sizeof k.bytes);
    stm_config_add_trusted(&cfg, &k);
    assert_int_equal(cfg.ntrusted, 2);
    cfg.insecure = true;
    cfg.trust_on_first_use = true;
    cfg.policy.mode[RELATION_SAME] = POLICY_SHARED;
    cfg.policy.mode[RELATION_ANCESTOR] = POLICY_NONE;
    cfg.policy.mode[RELATION_DESCENDANT] = POLICY_SHARED;
    cfg.policy.mode[RELATION_DIVERGENT] = POLICY_FULL;
    cfg.policy.mode[RELATION_UNRELATED] = POLICY_SHARED;
    cfg.policy.min_supported_version = 3;
    cfg.policy.max_version_gap = 7;
    cfg.heartbeat_ms = 250;
    cfg.peer_timeout_ms = 2000;
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 60000;
    cfg.batch_ops = 500;
    cfg.window = 16;
    cfg.local_poll_ms = 75;
    cfg.busy_timeout_ms = 150;
    cfg.discovery = true;
    cfg.discovery_port = 9422;
    cfg.discovery_interval_ms = 250;
    stm_config_set_str(&cfg.discovery_broadcast, "10.1.255.255");
    assert_int_equal(stm_config_save(&cfg, &err), STM_OK);
    assert_int_equal(tu_mode(dir, "node.toml"), 0644);
    tu_no_temporaries(dir);

    assert_int_equal(stm_config_load(dir, &back, &err), STM_OK);
    assert_string_equal(back.dir, dir);
    assert_string_equal(back.db, cfg.db);
    assert_string_equal(back.schemas, cfg.schemas);
    assert_string_equal(back.bind, cfg.bind);
    assert_string_equal(back.control, cfg.control);
    assert_int_equal(back.npeers, 2);
    assert_true(back.peers[0].has_key);
    assert_memory_equal(back.peers[0].key.bytes, cfg.peers[0].key.bytes, KEYS_BYTES);
    assert_string_equal(back.peers[0].endpoint, "tcp://[::1]:7000");
    assert_false(back.peers[1].has_key);
    assert_string_equal(back.peers[1].endpoint, "ipc:///run/peer.sock");
    assert_int_equal(back.ntrusted, 2);
    assert_memory_equal(back.trusted, cfg.trusted, 2 * sizeof *cfg.trusted);
    assert_true(back.insecure);
    assert_true(back.trust_on_first_use);
    assert_memory_equal(back.policy.mode, cfg.policy.mode, sizeof cfg.policy.mode);
    assert_int_equal(back.policy.min_supported_version, 3);
    assert_int_equal(back.policy.max_version_gap, 7);
    assert_int_equal(back.heartbeat_ms, 250);
    assert_int_equal(back.peer_timeout_ms, 2000);
    assert_int_equal(back.reconnect_min_ms, 50);
    assert_int_equal(back.reconnect_max_ms, 60000);
    assert_int_equal(back.batch_ops, 500);
    assert_int_equal(back.window, 16);
    assert_int_equal(back.local_poll_ms, 75);
    assert_int_equal(back.busy_timeout_ms, 150);
    assert_true(back.discovery);
    assert_int_equal(back.discovery_port, 9422);
    assert_int_equal(back.discovery_interval_ms, 250);
    assert_string_equal(back.discovery_broadcast, "10.1.255.255");

    /* bind "": a node that binds nowhere (it only dials) is a setting, not a mistake. */
    node_config nowhere;
    stm_config_set_str(&back.bind, "");
    assert_int_equal(stm_config_save(&back, &err), STM_OK);
    assert_int_equal(stm_config_load(dir, &nowhere, &err), STM_OK);
    assert_string_equal(nowhere.bind, "");
    stm_config_destroy(&nowhere);
    stm_config_set_str(&back.bind, cfg.bind);
    assert_int_equal(stm_config_save(&cfg, &err), STM_OK);

    /* The file documents every setting: a comment line right above each. */
    char *path = tu_path(dir, "node.toml");
    char *file = tu_read(path, NULL);
    static const char *const settings[] = {
        "db",
        "schemas",
        "bind",
        "control",
        "addresses",
        "enabled",
        "port",
        "interval_ms",
        "broadcast",
        "insecure",
        "trust_on_first_use",
        "trusted",
        "same",
        "ancestor",
        "descendant",
        "divergent",
        "unrelated",
        "min_supported_version",
        "max_version_gap",
        "heartbeat_ms",
        "peer_timeout_ms",
        "reconnect_min_ms",
        "reconnect_max_ms",
        "batch_ops",
        "window",
        "local_poll_ms",
        "busy_timeout_ms",
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        buf_t key = BUF_INIT;
        stm_buf_printf(&key, "\n%s = ", settings[i]);
        const char *at = strstr(file, stm_buf_str(&key));
        if (!at)
            fail_msg("%s is not written", settings[i]);
        /* The line before it is a comment. */
        const char *prev = at - 1;
        while (prev > file && prev[-1] != '\n')
            prev--;
        if (*prev != '#')
            fail_msg("no comment above %s", settings[i]);
        stm_buf_free(&key);
    }
    /* Keys are written in Z85, hex given or not. */
    assert_non_null(strstr(file, NU_CURVE_PUBLIC));
    free(file);

    /* Saving what was loaded gives the same file. */
    char *first = tu_read(path, NULL);
    assert_int_equal(stm_config_save(&back, &err), STM_OK);
    char *second = tu_read(path, NULL);
    assert_string_equal(first, second);
    free(first);
    free(second);

    /* Relative paths are relative to the node's directory. */
    char *db = stm_config_resolve(&back, back.db);
    buf_t want = BUF_INIT;
    stm_buf_printf(&want, "%s/%s", dir, cfg.db);
    assert_string_equal(db, stm_buf_str(&want));
    free(db);
    char *schemas = stm_config_resolve(&back, back.schemas);
    assert_string_equal(schemas, "/abs/schemas");
    free(schemas);

    stm_buf_free(&want);
    free(path);
    stm_buf_free(&text);
    stm_config_destroy(&back);
    stm_config_destroy(&cfg);
    tu_remove_tree(dir);
    free(dir);
}

static void test_config_missing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    node_config cfg;
    stm_error err = {0};
    /* No node.toml at all. */
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.toml", ": no such file", "stemma init");
    stm_config_destroy(&cfg);
    /* What is missing takes its default. */
    nu_write_config(dir, "[timing]\nheartbeat_ms = 10\n"
                         "[policy]\ndivergent = \"none\"\n");
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_OK);
    assert_string_equal(cfg.db, "app.db");
    assert_string_equal(cfg.schemas, "schemas");
    assert_string_equal(cfg.bind, CONFIG_DEFAULT_BIND);
    assert_int_equal(cfg.heartbeat_ms, 10);
    assert_int_equal(cfg.peer_timeout_ms, 5000);
    assert_int_equal(cfg.policy.mode[RELATION_DIVERGENT], POLICY_NONE);
    assert_int_equal(cfg.policy.mode[RELATION_UNRELATED], POLICY_NONE);
    assert_int_equal(cfg.policy.mode[RELATION_SAME], POLICY_FULL);
    assert_int_equal(cfg.window, 4);
    char *db = stm_config_resolve(&cfg, cfg.db);
    char *want = tu_path(dir, "app.db");
    assert_string_equal(db, want);
    free(db);
    free(want);
    stm_config_destroy(&cfg);
    /* Without db or schemas. */
    tu_write(dir, "node.toml", "[node]\nschemas = \"s\"\n");
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.toml", ":1:1: node.db: missing", NULL);
    stm_config_destroy(&cfg);
    tu_write(dir, "node.toml", "# nothing\n");
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.toml", ": node.db: missing", NULL);
    stm_config_destroy(&cfg);
    tu_write(dir, "node.toml", "[node]\ndb = \"a\"\n");
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.toml", ":1:1: node.schemas: missing", NULL);
    stm_config_destroy(&cfg);
    tu_remove_tree(dir);
    free(dir);
}

/* Every integer setting, just outside its bounds, is refused at its line and column;
 * at its bounds, it is taken (unless a pair of settings must agree). */
static void test_config_bounds(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    int checked = 0;
    for (size_t i = 0; i < stm_settings_nrows; i++) {
        const settings_row *s = &stm_settings_rows[i];
        if (s->type != SETTINGS_INT)
            continue;
        assert_string_not_equal(s->section, "node"); /* nu_write_config's [node] is above */
        const long long lo = s->min, hi = s->max, values[] = {lo - 1, hi + 1, lo, hi};
        for (int v = 0; v < 4; v++) {
            buf_t extra = BUF_INIT, says = BUF_INIT;
            stm_buf_printf(&extra, "[%s]\n%s = %lld\n", s->section, s->key, values[v]);
            stm_buf_printf(&says, ":5:%d: %s.%s: ", (int)strlen(s->key) + 4, s->section, s->key);
            if (v == 0 && lo == 0)
                stm_buf_printf(&says, "must not be negative, found -1");
            else if (v == 0)
                stm_buf_printf(&says, "must be at least %lld, found %lld", lo, lo - 1);
            else if (v == 1)
                stm_buf_printf(&says, "must be at most %lld, found %lld", hi, hi + 1);
            nu_write_config(dir, stm_buf_str(&extra));
            node_config cfg;
            stm_error err = {0};
            stm_err rc = stm_config_load(dir, &cfg, &err);
            if (v < 2) {
                if (rc != STM_EINPUT)
                    fail_msg("accepted %s", stm_buf_str(&extra));
                tu_expect_msg(&err, dir, "node.toml", stm_buf_str(&says), NULL);
            } else if (rc != STM_OK && !strstr(err.msg, "must be more than") &&
                       !strstr(err.msg, "must not be more than")) {
                fail_msg("refused %s: %s", stm_buf_str(&extra), err.msg);
            }
            stm_config_destroy(&cfg);
            stm_buf_free(&extra);
            stm_buf_free(&says);
        }
        checked++;
    }
    assert_int_equal(checked, 16); /* mesh's one, policy's two, timing's four, sync's five,
                                      discovery's two, compaction's two */
    tu_remove_tree(dir);
    free(dir);
}

/* What stemma init does (stm_config_init, then the settings its options give, then
 * stm_config_save), read back, saved again and read again: the same file each time and
 * the defaults kept. And a node.toml written before the table loads as it did. */
static void test_config_init_load_save_load(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    node_config made, first, second;
    stm_config_init(&made, dir);
    stm_config_set_str(&made.db, "/srv/app.db");
    stm_config_set_str(&made.schemas, "schemas");
    assert_string_equal(made.layout, "auto");
    stm_config_set_str(&made.layout, "golang-migrate");
    assert_int_equal(stm_config_save(&made, &err), STM_OK);
    char *text0 = tu_read_file(dir, "node.toml");
    assert_int_equal(stm_config_load(dir, &first, &err), STM_OK);
    assert_string_equal(first.layout, "golang-migrate");
    assert_string_equal(first.control, made.control);
    assert_string_equal(first.bind, made.bind);
    assert_memory_equal(&first.policy, &made.policy, sizeof made.policy);
    assert_int_equal(first.heartbeat_ms, made.heartbeat_ms);
    assert_int_equal(first.busy_timeout_ms, made.busy_timeout_ms);
    assert_int_equal(stm_config_save(&first, &err), STM_OK);
    char *text1 = tu_read_file(dir, "node.toml");
    assert_string_equal(text1, text0);
    assert_int_equal(stm_config_load(dir, &second, &err), STM_OK);
    assert_int_equal(stm_config_save(&second, &err), STM_OK);
    char *text2 = tu_read_file(dir, "node.toml");
    assert_string_equal(text2, text0);
    /* The comments are TOML comments: only the settings are values. */
    assert_non_null(strstr(text0, "\n# The application's SQLite database"));
    assert_non_null(strstr(text0, "\"tcp://127.0.0.1:7420\".\nbind = "));
    free(text0);
    free(text1);
    free(text2);
    stm_config_destroy(&made);
    stm_config_destroy(&first);
    stm_config_destroy(&second);

    /* `stemma init --trust-on-first-use --peer KEY@tcp://10.0.0.2:7420`, as stemma 0.1
     * wrote it before node.toml came from the table, with some settings changed by
     * hand. */
    char *old = tu_read("tests/data/node_toml/before_the_table.toml", NULL);
    assert_non_null(old);
    tu_write(dir, "node.toml", old);
    free(old);
    assert_int_equal(stm_config_load(dir, &first, &err), STM_OK);
    assert_string_equal(first.db, "/tmp/cfgbase/app.db");
    assert_string_equal(first.control, "ipc:///tmp/cfgbase/n/control.sock");
    assert_int_equal(first.npeers, 1);
    assert_string_equal(first.peers[0].endpoint, "tcp://10.0.0.2:7420");
    assert_int_equal(first.ntrusted, 1);
    assert_true(stm_id_equal(&first.peers[0].key, &first.trusted[0]));
    assert_true(first.trust_on_first_use);
    assert_false(first.insecure);
    assert_int_equal(first.policy.mode[RELATION_DIVERGENT], POLICY_NONE);
    assert_int_equal(first.policy.mode[RELATION_UNRELATED], POLICY_NONE);
    assert_int_equal(first.policy.min_supported_version, 2);
    assert_string_equal(first.layout, "auto"); /* absent: detected, as before */
    assert_int_equal(first.heartbeat_ms, 500);
    assert_int_equal(first.window, 8);
    stm_config_destroy(&first);
    tu_remove_tree(dir);
    free(dir);
}

/* docs/user-guide.md's settings are stm_config_doc_markdown's, so the guide cannot say
 * other than the table. STEMMA_UPDATE_DOCS=1 build/test_node_config rewrites them. */
static void test_config_doc_table(void **state)
{
    (void)state;
    static const char *const guide = "docs/user-guide.md";
    static const char *const begin =
        "<!-- settings: written by stm_config_doc_markdown from the table in node/settings.c";
    static const char *const end = "<!-- end of settings -->";
    char *text = tu_read(guide, NULL);
    assert_non_null(text);
    char *from = strstr(text, begin), *to = from ? strstr(from, end) : NULL;
    if (!from || !to)
        fail_msg("%s: no \"%s\" ... \"%s\" block", guide, begin, end);
    from = strstr(from, "-->\n") + 4;
    char *md = stm_config_doc_markdown();
    buf_t want = BUF_INIT;
    stm_buf_printf(&want, "\n%s\n", md);
    /* Every row is one row: no doc may hold a '|'. */
    for (const char *line = md; *line; line = strchr(line, '\n') + 1) {
        int bars = 0;
        for (const char *c = line; *c != '\n'; c++)
            bars += *c == '|';
        assert_true(bars == 0 || bars == 5);
    }
    size_t have = (size_t)(to - from);
    if (have != want.len || memcmp(from, stm_buf_str(&want), have) != 0) {
        if (getenv("STEMMA_UPDATE_DOCS")) {
            FILE *f = fopen(guide, "w");
            assert_non_null(f);
            fprintf(f, "%.*s%s%s", (int)(from - text), text, stm_buf_str(&want), to);
            assert_int_equal(fclose(f), 0);
        } else {
            size_t at = 0;
            while (at < have && at < want.len && from[at] == stm_buf_str(&want)[at])
                at++;
            fail_msg("%s differs from node/config.c's table of settings from \"%.60s\" "
                     "(the table says \"%.60s\"); STEMMA_UPDATE_DOCS=1 build/test_node_config "
                     "rewrites it",
                     guide, from + at, stm_buf_str(&want) + at);
        }
    }
    stm_buf_free(&want);
    free(md);
    free(text);
}

static void test_config_bad(void **state)
{
    (void)state;
    static const nu_bad bad[] = {
        /* syntax, reported by the TOML parser */
        {"bind = \"tcp://h:1\n", ":4:18: end of line in a string"},
        {"[peers\n", ":4:"},
        {"db = \"again\"\n", ":4:1: "},
        /* wrong types */
        {"bind = 7420\n", ":4:8: node.bind: expected a string, found an integer"},
        {"[security]\ninsecure = \"yes\"\n",
         ":5:12: security.insecure: expected a bool, found a string"},
        {"[security]\ntrusted = \"key\"\n",
         ":5:11: security.trusted: expected an array, found a string"},
        {"[security]\ntrusted = [1]\n",
         ":5:12: security.trusted: expected an array of strings, found an integer"},
        {"[peers]\naddresses = [\"ipc:///x\", true]\n",
         ":5:26: peers.addresses: expected an array of strings, found a bool"},
        {"[timing]\nheartbeat_ms = 1.5\n",
         ":5:16: timing.heartbeat_ms: expected an integer, found a float"},
        {"[policy]\nsame = true\n", ":5:8: policy.same: expected a string, found a bool"},
        {"!timing = 5\n[node]\ndb = \"a\"\nschemas = \"s\"\n",
         ":1:10: timing: expected a table ([timing]), found an integer"},
        {"[[sync]]\nwindow = 1\n", ":4:1: sync: expected a table ([sync]), found an array"},
        /* bad strings */
        {"control = \"\"\n", ":4:11: node.control: must not be empty"},
        {"name = \"a\\tb\"\n", ":4:8: node.name: holds a control character (byte 0x09)"},
        {"name = \"" "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" "\"\n",
         ":4:8: node.name: is 65 bytes long; at most 64"},
        {"control = \"a\\u0000b\"\n", ":4:11: node.control: holds a NUL character"},
        /* bad endpoints */
        {"bind = \"tcp://h\"\n", ":4:8: node.bind: 'tcp://h' has no port"},
        {"bind = \"udp://h:1\"\n",
         ":4:8: node.bind: 'udp://h:1' is not tcp://HOST:PORT or ipc://PATH"},
        {"control = \"tcp://h:99999\"\n", ":4:11: node.control: 'tcp://h:99999': the port must be"},
        {"[peers]\naddresses = [\n  \"tcp://h:1\",\n]\n",
         ":6:3: peers.addresses: 'tcp://h:1' has no key"},
        {"[peers]\naddresses = [\"HelloWorldHelloWorldHelloWorldHelloWorld@tcp://*:1\"]\n",
         ":5:14: peers.addresses: 'tcp://*:1': the host"},
        /* bad keys */
        {"[peers]\naddresses = [\"HelloWorldHelloWorldHelloWorldHelloWor~d@tcp://h:1\"]\n",
         ":5:14: peers.addresses: 'HelloWorld"},
        {"[security]\ntrusted = [\"HelloWorldHelloWorldHelloWorldHelloWorld\", \"nope\"]\n",
         ":5:56: security.trusted: 'nope' is not a key: expected 40 Z85 characters or 64 hex "
         "digits"},
        /* bad policy words */
        {"[policy]\ndivergent = \"partial\"\n",
         ":5:13: policy.divergent: expected \"full\", \"shared\" or \"none\", found \"partial\""},
        {"[policy]\nunrelated = \"Full\"\n", ":5:13: policy.unrelated: expected"},
        /* a layout no one knows */
        {"layout = \"liquibase\"\n",
         ":4:10: node.layout: expected \"auto\" or one of stemma, flyway, diesel, sqlx, dbmate, "
         "goose, golang-migrate, found \"liquibase\""},
        {"layout = 1\n", ":4:10: node.layout: expected a string, found an integer"},
        /* numbers out of range */
        {"[policy]\nmin_supported_version = -1\n",
         ":5:25: policy.min_supported_version: must not be negative, found -1"},
        {"[policy]\nmax_version_gap = -3\n", ":5:19: policy.max_version_gap: must not be negative"},
        {"[timing]\npeer_timeout_ms = -5000\n",
         ":5:19: timing.peer_timeout_ms: must not be negative"},
        {"[timing]\nheartbeat_ms = 0\n", ":5:16: timing.heartbeat_ms: must be at least 1, found 0"},
        {"[timing]\nheartbeat_ms = 86400001\n",
         ":5:16: timing.heartbeat_ms: must be at most 86400000"},
        {"[sync]\nwindow = 0\n", ":5:10: sync.window: must be at least 1"},
        {"[sync]\nbatch_ops = 9999999999\n", ":5:13: sync.batch_ops: must be at most 100000"},
        {"[sync]\nlocal_poll_ms = -1\n", ":5:17: sync.local_poll_ms: must not be negative"},
        {"[sync]\nbusy_timeout_ms = 0\n", ":5:19: sync.busy_timeout_ms: must be at least 1"},
        {"[discovery]\nport = 0\n", ":5:8: discovery.port: must be at least 1, found 0"},
        {"[discovery]\nport = 65536\n", ":5:8: discovery.port: must be at most 65535"},
        {"[discovery]\ninterval_ms = 10\n",
         ":5:15: discovery.interval_ms: must be at least 100, found 10"},
        {"[discovery]\nenabled = \"yes\"\n",
         ":5:11: discovery.enabled: expected a bool, found a string"},
        /* bad addresses */
        {"[discovery]\nbroadcast = \"255.255.255.256\"\n",
         ":5:13: discovery.broadcast: '255.255.255.256' is not an IPv4 address: expected four "
         "numbers 0 to 255"},
        {"[discovery]\nbroadcast = \"\"\n", ":5:13: discovery.broadcast: '' is not an IPv4"},
        {"[discovery]\nbroadcast = \"ff02::1\"\n", ":5:13: discovery.broadcast: 'ff02::1' is not"},
        {"[discovery]\nbroadcast = \"10.0.0.255\\u0000\"\n",
         ":5:13: discovery.broadcast: holds a NUL character"},
        {"[discovery]\nbroadcast = 255\n",
         ":5:13: discovery.broadcast: expected a string, found an integer"},
        /* settings that must agree */
        {"[timing]\nheartbeat_ms = 5000\n", ":5:16: timing.heartbeat_ms: peer_timeout_ms (5000) "
                                            "must be more than heartbeat_ms (5000)"},
        {"[timing]\nheartbeat_ms = 100\npeer_timeout_ms = 50\n",
         ":6:19: timing.peer_timeout_ms: peer_timeout_ms (50) must be more"},
        {"[timing]\nreconnect_min_ms = 6000\n",
         ":5:20: timing.reconnect_min_ms: reconnect_min_ms (6000) must not be more than "
         "reconnect_max_ms (5000)"},
    };
    nu_refuse_all(bad, sizeof bad / sizeof bad[0]);
}

static double s_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The most trusted keys node.toml may list, with repeats: read in n log n, each kept
 * once in the order given (each was compared with all before it: 26 s to start a
 * node with 100,000). */
static void test_config_many_trusted_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    buf_t b = BUF_INIT;
    stm_buf_puts(&b, "[security]\ntrusted = [");
    for (int i = 0; i < CONFIG_MAX_TRUSTED; i++) {
        int k = i % 3 == 2 ? i - 1 : i; /* every third repeats the one before */
        stm_buf_printf(&b, "%s\"", i ? ", " : "");
        for (int j = 0; j < KEYS_BYTES; j++)
            stm_buf_printf(&b, "%02x", j < 4 ? (unsigned)(k >> (8 * j)) & 0xff : 0x5a);
        stm_buf_putc(&b, '"');
    }
    stm_buf_puts(&b, "]\n");
    nu_write_config(dir, stm_buf_str(&b));
    node_config cfg;
    stm_error err = {0};
    double t0 = s_seconds();
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_OK);
    double took = s_seconds() - t0;
    printf("# %d trusted keys read in %.2f s\n", CONFIG_MAX_TRUSTED, took);
    assert_true(took < 10.0);
    size_t want = CONFIG_MAX_TRUSTED - CONFIG_MAX_TRUSTED / 3;
    assert_int_equal(cfg.ntrusted, want);
    for (size_t i = 0; i < cfg.ntrusted; i++) {
        int k = (int)(i / 2 * 3 + i % 2); /* keys 0, 1, 3, 4, 6, ... */
        unsigned got = 0;
        for (int j = 0; j < 4; j++)
            got |= (unsigned)cfg.trusted[i].bytes[j] << (8 * j);
        assert_int_equal(got, (unsigned)k);
    }
    stm_config_destroy(&cfg);
    stm_buf_free(&b);
    tu_remove_tree(dir);
    free(dir);
}

/* A FIFO where a file should be: refused at once as not a regular file. Opening one
 * for reading waits for a writer, so a node or a command would hang; the alarm turns a
 * hang into a failure. */
static void test_fifos_are_refused_not_waited_on(void **state)
{
    (void)state;
    alarm(20);
    stm_error err = {0};
    const char *files[] = {"node.key", "node.pub"};
    for (size_t i = 0; i < 2; i++) {
        char *dir = tu_tmpdir();
        assert_int_equal(stm_keys_generate(dir, &err), STM_OK);
        char *path = tu_path(dir, files[i]);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0600), 0);
        node_keys *keys = NULL;
        assert_int_equal(stm_keys_load(dir, &keys, &err), STM_EINPUT);
        tu_expect_msg(&err, dir, files[i], ": not a regular file", NULL);
        free(path);
        tu_remove_tree(dir);
        free(dir);
    }
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "known_peers");
    assert_int_equal(mkfifo(path, 0600), 0);
    stm_id *keys = NULL;
    size_t n = 0;
    assert_int_equal(stm_known_peers_load(dir, &keys, &n, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "known_peers", ": not a regular file", NULL);
    free(path);
    path = tu_path(dir, "node.toml");
    assert_int_equal(mkfifo(path, 0600), 0);
    node_config cfg;
    assert_int_equal(stm_config_load(dir, &cfg, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.toml", ": not a regular file", NULL);
    stm_config_destroy(&cfg);
    free(path);
    tu_remove_tree(dir);
    free(dir);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peers),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_round_trip),
        cmocka_unit_test(test_config_missing),
        cmocka_unit_test(test_config_bounds),
        cmocka_unit_test(test_config_init_load_save_load),
        cmocka_unit_test(test_config_doc_table),
        cmocka_unit_test(test_config_bad),
        cmocka_unit_test(test_fifos_are_refused_not_waited_on),
        cmocka_unit_test(test_config_many_trusted_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
