/* Tests of node/settings, the table of node.toml's settings: it holds together (every
 * row in a known section, in the sections' order, defaults within bounds and agreeing
 * with the rules, docs on one line), and a name the table does not have is refused at
 * its line with the nearest known name, or the names there are. */
#include "node/settings.h"
#include "nodeutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

/* The table holds together: every row in a known section, the rows grouped in the
 * sections' order, each section with a row, defaults within bounds and agreeing with
 * the rules, docs on one line each. */
static void test_settings_table(void **state)
{
    (void)state;
    size_t section = 0;
    for (size_t i = 0; i < stm_settings_nrows; i++) {
        const settings_row *s = &stm_settings_rows[i];
        while (section < stm_settings_nsections &&
               strcmp(stm_settings_sections[section].name, s->section) != 0)
            section++;
        if (section == stm_settings_nsections)
            fail_msg("%s.%s: its section is unknown, or out of order", s->section, s->key);
        assert_ptr_equal(stm_settings_find(s->section, s->key, strlen(s->key)), s);
        assert_null(strpbrk(s->doc, "|\n"));
        if (s->type == SETTINGS_INT)
            assert_true(s->min <= s->value && s->value <= s->max);
        if (s->type == SETTINGS_PEERS || s->type == SETTINGS_KEYS)
            assert_true(s->max > 0);
    }
    assert_int_equal(section, stm_settings_nsections - 1);
    for (size_t i = 0; i < stm_settings_nsections; i++) {
        assert_null(strpbrk(stm_settings_sections[i].doc, "|\n"));
        bool has_row = false;
        for (size_t j = 0; j < stm_settings_nrows; j++)
            has_row |= strcmp(stm_settings_rows[j].section, stm_settings_sections[i].name) == 0;
        assert_true(has_row);
    }
    for (size_t i = 0; i < stm_settings_nrules; i++) {
        const settings_rule *r = &stm_settings_rules[i];
        const settings_row *lo = stm_settings_find(r->section, r->lower, strlen(r->lower));
        const settings_row *hi = stm_settings_find(r->section, r->upper, strlen(r->upper));
        assert_non_null(lo);
        assert_non_null(hi);
        assert_int_equal(lo->type, SETTINGS_INT);
        assert_int_equal(hi->type, SETTINGS_INT);
        assert_true(r->strict ? lo->value < hi->value : lo->value <= hi->value);
    }
}

/* A name node.toml's table does not have is refused at its line, with the nearest
 * known name, or the names there are. */
static void test_config_unknown_names(void **state)
{
    (void)state;
    static const nu_bad bad[] = {
        {"[securty]\ninsecure = true\n", ":4: unknown section [securty]; did you mean [security]?"},
        {"[Policy]\nsame = \"none\"\n", ":4: unknown section [Policy]; did you mean [policy]?"},
        {"[timing]\nheartbeat_ms = 10\n[peer]\n", ":6: unknown section [peer]; did you mean [peers]?"},
        {"[future]\nanything = [1, 2]\n",
         ":4: unknown section [future]; the sections are [node], [peers], [mesh], [discovery], "
         "[security], [policy], [timing], [sync] and [compaction]"},
        {"[discover]\nenabled = true\n", ":4: unknown section [discover]; did you mean [discovery]?"},
        {"[discovery]\ninterval = 500\n",
         ":5: unknown key discovery.interval; did you mean discovery.interval_ms?"},
        {"[timing]\nheartbeat = 10\n",
         ":5: unknown key timing.heartbeat; did you mean timing.heartbeat_ms?"},
        {"bnd = \"tcp://*:1\"\n", ":4: unknown key node.bnd; did you mean node.bind?"},
        {"[sync]\nwindow_size = 8\n", ":5: unknown key sync.window_size; did you mean sync.window?"},
        /* In the wrong section: the section it belongs to. */
        {"insecure = true\n", ":4: unknown key node.insecure; did you mean security.insecure?"},
        {"[timing]\nfuture_ms = \"soon\"\n",
         ":5: unknown key timing.future_ms; [timing] holds heartbeat_ms, peer_timeout_ms, "
         "reconnect_min_ms and reconnect_max_ms"},
        {"[node.extra]\nx = 1\n",
         ":4: unknown section [node.extra]; [node] holds db, schemas, layout, log_level, bind, advertise, name and control"},
        {"[securty.x]\ny = 1\n", ":4: unknown section [securty]; did you mean [security]?"},
        /* The first one in the file is the one reported. */
        {"[timing]\nheartbeat_ms = 10\nbeat = 3\n[sync]\nwindoe = 2\n",
         ":6: unknown key timing.beat; [timing] holds"},
        /* Names that cannot break the message's line. */
        {"[timing]\n\"heart\\nbeat\" = 1\n", ":5: unknown key timing.heart\\x0abeat; "},
        {"[timing]\n\"a\\u0000b\" = 1\n", ":5: unknown key timing.a; [timing] holds"},
        {"[timing]\n"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         " = 1\n",
         ":5: unknown key timing.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...; "},
        /* Outside any section. */
        {"!colour = \"blue\"\n[node]\ndb = \"a\"\nschemas = \"s\"\n",
         ":1: unknown key colour; every setting is in a section: [node], "
         "[peers], [mesh], [discovery], [security], [policy], [timing], [sync] and [compaction]"},
        {"!db = \"a\"\n[node]\nschemas = \"s\"\n",
         ":1: unknown key db outside any section; did you mean node.db?"},
        {"!securty.insecure = true\n[node]\ndb = \"a\"\nschemas = \"s\"\n",
         ":1: unknown section [securty]; did you mean [security]?"},
    };
    nu_refuse_all(bad, sizeof bad / sizeof bad[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_unknown_names),
        cmocka_unit_test(test_settings_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
