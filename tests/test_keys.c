/* Tests of node/keys: keys in Z85 and hex; a key pair made, written and read back, never
 * replaced; zmq_curve(7)'s documented pair read from hand-written files; the secret key
 * file's mode enforced; every way a key file can be damaged, each refused with one line
 * naming the file and never quoting the secret. */
#include "base/buf.h"
#include "node/keys.h"
#include "nodeutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void s_chmod(const char *dir, const char *name, mode_t mode)
{
    char *p = tu_path(dir, name);
    assert_int_equal(chmod(p, mode), 0);
    free(p);
}

/* The file's text without its trailing newline. */
static char *s_read_line(const char *dir, const char *name)
{
    char *text = tu_read_file(dir, name);
    size_t n = strlen(text);
    if (n && text[n - 1] == '\n')
        text[n - 1] = '\0';
    return text;
}

static void test_keys_parse(void **state)
{
    (void)state;
    stm_id key, again, raw;
    char z85[KEYS_Z85_LEN + 1], hex[KEYS_HEX_LEN + 1];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < KEYS_BYTES; i++)
            raw.bytes[i] = (unsigned char)(round * 37 + i * 11 + (round & 1 ? 255 - i : i));
        if (round == 1)
            memset(raw.bytes, 0, sizeof raw.bytes);
        if (round == 2)
            memset(raw.bytes, 0xff, sizeof raw.bytes);
        stm_keys_to_z85(&raw, z85);
        assert_int_equal(strlen(z85), KEYS_Z85_LEN);
        assert_true(stm_keys_parse(z85, &key));
        assert_true(stm_id_equal(&key, &raw));
        /* The same key in hex, lower and upper case. */
        for (int i = 0; i < KEYS_BYTES; i++)
            snprintf(hex + 2 * i, 3, "%02x", raw.bytes[i]);
        assert_true(stm_keys_parse(hex, &again));
        assert_true(stm_id_equal(&again, &raw));
        for (char *c = hex; *c; c++)
            if (*c >= 'a' && *c <= 'f')
                *c = (char)(*c - 'a' + 'A');
        assert_true(stm_keys_parse(hex, &again));
        assert_true(stm_id_equal(&again, &raw));
    }
    /* Z85's own example (ZeroMQ RFC 32), four times over to make 32 bytes. */
    static const unsigned char hello[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
    assert_true(stm_keys_parse("HelloWorldHelloWorldHelloWorldHelloWorld", &key));
    for (int i = 0; i < 4; i++)
        assert_memory_equal(key.bytes + 8 * i, hello, 8);
    stm_keys_to_z85(&key, z85);
    assert_string_equal(z85, "HelloWorldHelloWorldHelloWorldHelloWorld");

    static const char *const bad[] = {
        "",
        "HelloWorldHelloWorldHelloWorldHelloWorl",   /* 39 */
        "HelloWorldHelloWorldHelloWorldHelloWorldH", /* 41 */
        "HelloWorldHelloWorldHelloWorldHelloWorl~",  /* not in Z85 */
        "HelloWorldHelloWorldHelloWorldHelloWorl ",
        "HelloWorldHelloWorldHelloWorldHelloWorl\"",
        "HelloWorldHelloWorldHelloWorldHelloWor_d",
        "########################################", /* Z85 above 2^32 per 5 characters */
        " HelloWorldHelloWorldHelloWorldHelloWorld",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",   /* 63 */
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0", /* 65 */
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
        "0x112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        "00112233445566778899aabbccddeeff 0112233445566778899aabbccddeeff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (stm_keys_parse(bad[i], &key))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_keys_round_trip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    assert_int_equal(stm_keys_generate(dir, &err), STM_OK);
    assert_int_equal(tu_mode(dir, "node.key"), 0600);
    assert_int_equal(tu_mode(dir, "node.pub"), 0644);
    tu_no_temporaries(dir);
    char *pub = s_read_line(dir, "node.pub");
    char *sec = s_read_line(dir, "node.key");
    assert_int_equal(strlen(pub), KEYS_Z85_LEN);
    assert_int_equal(strlen(sec), KEYS_Z85_LEN);

    node_keys *keys = NULL;
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_OK);
    assert_string_equal(stm_keys_public_z85(keys), pub);
    assert_string_equal(stm_keys_secret_z85(keys), sec);
    stm_id raw;
    assert_true(stm_keys_parse(pub, &raw));
    assert_true(stm_id_equal(stm_keys_public(keys), &raw));
    assert_true(stm_keys_parse(sec, &raw));
    assert_memory_equal(stm_keys_secret(keys), raw.bytes, KEYS_BYTES);
    stm_keys_destroy(&keys);
    assert_null(keys);
    stm_keys_destroy(&keys); /* safe twice */

    /* Never replaced: a second pair is refused and the first is still there. */
    assert_int_equal(stm_keys_generate(dir, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.key", ": already exists", NULL);
    char *sec2 = s_read_line(dir, "node.key");
    assert_string_equal(sec2, sec);
    tu_no_temporaries(dir);

    /* Two pairs are different. */
    char *dir2 = tu_tmpdir();
    assert_int_equal(stm_keys_generate(dir2, &err), STM_OK);
    char *pub2 = s_read_line(dir2, "node.pub");
    assert_string_not_equal(pub2, pub);

    /* A directory that is not there. */
    char *missing = tu_path(dir, "no/such");
    assert_int_equal(stm_keys_generate(missing, &err), STM_ESYS);
    tu_expect_msg(&err, missing, "node.key", ": cannot write", NULL);
    assert_int_equal(stm_keys_load(missing, &keys, &err), STM_EINPUT);
    tu_expect_msg(&err, missing, "node.key", ": no such file", "stemma init");

    free(missing);
    free(pub2);
    tu_remove_tree(dir2);
    free(dir2);
    free(sec2);
    free(pub);
    free(sec);
    tu_remove_tree(dir);
    free(dir);
}

static void test_keys_documented_pair(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    buf_t line = BUF_INIT;
    stm_buf_printf(&line, "%s\n", NU_CURVE_SECRET);
    tu_write(dir, "node.key", stm_buf_str(&line));
    s_chmod(dir, "node.key", 0600);
    /* The public key in hex, with a CRLF: both are accepted. */
    stm_id raw;
    assert_true(stm_keys_parse(NU_CURVE_PUBLIC, &raw));
    stm_buf_reset(&line);
    for (int i = 0; i < KEYS_BYTES; i++)
        stm_buf_printf(&line, "%02X", raw.bytes[i]);
    stm_buf_puts(&line, "\r\n");
    tu_write(dir, "node.pub", stm_buf_str(&line));
    node_keys *keys = NULL;
    stm_error err = {0};
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_OK);
    assert_string_equal(stm_keys_public_z85(keys), NU_CURVE_PUBLIC);
    assert_string_equal(stm_keys_secret_z85(keys), NU_CURVE_SECRET);
    stm_keys_destroy(&keys);
    stm_buf_free(&line);
    tu_remove_tree(dir);
    free(dir);
}

static void test_keys_mode_enforced(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    node_keys *keys = NULL;
    assert_int_equal(stm_keys_generate(dir, &err), STM_OK);
    char *key_path = tu_path(dir, "node.key");
    buf_t hint = BUF_INIT;
    stm_buf_printf(&hint, "run 'chmod 600 %s'", key_path);
    static const mode_t too_open[] = {0644, 0640, 0604, 0660, 0601, 0610, 0666};
    for (size_t i = 0; i < sizeof too_open / sizeof too_open[0]; i++) {
        s_chmod(dir, "node.key", too_open[i]);
        assert_int_equal(stm_keys_load(dir, &keys, &err), STM_EINPUT);
        assert_null(keys);
        tu_expect_msg(&err, dir, "node.key", ": permissions 0", stm_buf_str(&hint));
    }
    s_chmod(dir, "node.key", 0644);
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.key", ": permissions 0644 are too open", NULL);
    /* Private again, or read-only for its owner: accepted. */
    s_chmod(dir, "node.key", 0400);
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_OK);
    stm_keys_destroy(&keys);
    s_chmod(dir, "node.key", 0600);
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_OK);
    stm_keys_destroy(&keys);
    stm_buf_free(&hint);
    free(key_path);
    tu_remove_tree(dir);
    free(dir);
}

/* Writes text as dir/name (the secret file private) and expects stm_keys_load to refuse it
 * with "DIR/NAME: " + rest. */
static void s_corrupt(const char *dir, const char *name, const char *text, size_t len,
                      const char *rest)
{
    char *path = tu_path(dir, name);
    char *saved = tu_read(path, NULL);
    tu_write_bytes(dir, name, text, len);
    if (strcmp(name, "node.key") == 0)
        s_chmod(dir, name, 0600);
    node_keys *keys = NULL;
    stm_error err = {0};
    if (stm_keys_load(dir, &keys, &err) != STM_EINPUT)
        fail_msg("%s accepted: %.*s", name, (int)len, text);
    assert_null(keys);
    tu_expect_msg(&err, dir, name, rest, NULL);
    /* The secret is never quoted in a message. */
    if (strcmp(name, "node.key") == 0 && len >= 10)
        assert_null(strstr(err.msg, "Hello"));
    tu_write(dir, name, saved);
    if (strcmp(name, "node.key") == 0)
        s_chmod(dir, name, 0600);
    free(saved);
    free(path);
}

#define S_CORRUPT(dir, name, lit, rest) s_corrupt(dir, name, lit, sizeof(lit) - 1, rest)

static void test_keys_corrupt_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    assert_int_equal(stm_keys_generate(dir, &err), STM_OK);
    char *pub = s_read_line(dir, "node.pub");
    static const char *const names[] = {"node.key", "node.pub"};
    for (int i = 0; i < 2; i++) {
        const char *n = names[i];
        S_CORRUPT(dir, n, "", ": empty; expected one key");
        S_CORRUPT(dir, n, "\n", ": empty; expected one key");
        S_CORRUPT(dir, n, "HelloWorld\n",
                  ": not a key: expected 40 Z85 characters or 64 hex "
                  "digits, found 10 characters");
        S_CORRUPT(dir, n, "HelloWorldHelloWorldHelloWorldHelloWorld!\n",
                  ": not a key: expected 40 Z85 characters or 64 hex digits, found 41");
        S_CORRUPT(dir, n, "HelloWorldHelloWorldHelloWorldHelloWor~d\n",
                  ": not a key: not valid Z85");
        S_CORRUPT(dir, n, "HelloWorldHelloWorldHelloWorldHelloWorld\n\n",
                  ": holds more than one line");
        S_CORRUPT(dir, n,
                  "HelloWorldHelloWorldHelloWorldHelloWorld\n"
                  "HelloWorldHelloWorldHelloWorldHelloWorld\n",
                  ": holds more than one line; expected exactly one key");
        S_CORRUPT(
            dir, n,
            "HelloWorldHelloWorldHelloWorldHelloWorld HelloWorldHelloWorldHelloWorldHelloWorld",
            ": not a key");
        S_CORRUPT(dir, n, "HelloWorldHello\0orldHelloWorldHelloWorld\n", ": holds a NUL byte");
        S_CORRUPT(dir, n, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n",
                  ": not a key: not valid hex");
        S_CORRUPT(dir, n, " HelloWorldHelloWorldHelloWorldHelloWorld\n", ": not a key");
    }
    /* Too long to be read at all. */
    char big[1000];
    memset(big, 'A', sizeof big);
    s_corrupt(dir, "node.pub", big, sizeof big, ": 1000 bytes is too long for a key file");
    /* A valid key that is not the pair's. */
    char *dir2 = tu_tmpdir();
    assert_int_equal(stm_keys_generate(dir2, &err), STM_OK);
    char *other = s_read_line(dir2, "node.pub");
    buf_t text = BUF_INIT;
    stm_buf_printf(&text, "%s\n", other);
    char *key_path = tu_path(dir, "node.key");
    buf_t rest = BUF_INIT;
    stm_buf_printf(&rest, ": not the public key of %s", key_path);
    s_corrupt(dir, "node.pub", text.data, text.len, stm_buf_str(&rest));
    /* Missing files. */
    char *pub_path = tu_path(dir, "node.pub");
    assert_int_equal(unlink(pub_path), 0);
    node_keys *keys = NULL;
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.pub", ": no such file", NULL);
    assert_int_equal(unlink(key_path), 0);
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.key", ": no such file", NULL);
    /* A directory where the key should be. */
    assert_int_equal(mkdir(key_path, 0700), 0);
    assert_int_equal(stm_keys_load(dir, &keys, &err), STM_EINPUT);
    tu_expect_msg(&err, dir, "node.key", ": not a regular file", NULL);
    free(pub_path);
    stm_buf_free(&rest);
    free(key_path);
    stm_buf_free(&text);
    free(other);
    tu_remove_tree(dir2);
    free(dir2);
    free(pub);
    tu_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_parse),           cmocka_unit_test(test_keys_round_trip),
        cmocka_unit_test(test_keys_documented_pair), cmocka_unit_test(test_keys_mode_enforced),
        cmocka_unit_test(test_keys_corrupt_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
