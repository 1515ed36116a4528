/* Tests of node/known_peers: keys appended and read back; the file as a person may have
 * edited it (comments, blank lines, hex, no final newline); a line that is not a key,
 * one too long, NUL bytes, each refused at its line. */
#include "base/buf.h"
#include "node/keys.h"
#include "node/known_peers.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
