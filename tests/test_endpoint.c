/* Tests of node/endpoint: the tcp:// and ipc:// endpoints a node may bind or connect to,
 * `*` only where it binds, the longest ipc:// path, and every bad one refused with a
 * message saying what is wrong. */
#include "node/endpoint.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

static void test_endpoints(void **state)
{
    (void)state;
    stm_error err = {0};
    static const char *const good[] = {
        "tcp://127.0.0.1:7420", "tcp://localhost:1", "tcp://my-host.example.org:65535",
        "tcp://[::1]:7420",     "ipc:///tmp/x.sock", "ipc://@abstract",
        "tcp://eth0:7000",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (stm_endpoint_check(good[i], false, &err) != STM_OK)
            fail_msg("refused %s: %s", good[i], err.msg);
    }
    assert_int_equal(stm_endpoint_check("tcp://*:7420", true, &err), STM_OK);
    assert_int_equal(stm_endpoint_check("tcp://*:7420", false, &err), STM_EINPUT);
    char long_ipc[200] = "ipc:///";
    memset(long_ipc + 7, 'a', 106); /* "/" and 106: a 107-byte path, the longest */
    assert_int_equal(stm_endpoint_check(long_ipc, false, &err), STM_OK);
    long_ipc[7 + 106] = 'a';
    assert_int_equal(stm_endpoint_check(long_ipc, false, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "longer than the 107"));
    static const struct {
        const char *endpoint, *says;
    } bad[] = {
        {"", "is not tcp://HOST:PORT or ipc://PATH"},
        {"http://x:80", "is not tcp://HOST:PORT or ipc://PATH"},
        {"tcp://host", "has no port"},
        {"tcp://:7420", "the host must be"},
        {"tcp://a b:7420", "the host must be"},
        {"tcp://[::1:7420", "the host must be"},
        {"tcp://[]:7420", "the host must be"},
        {"tcp://host:", "the port must be a number from 1 to 65535"},
        {"tcp://host:0", "the port"},
        {"tcp://host:65536", "the port"},
        {"tcp://host:123456", "the port"},
        {"tcp://host:-1", "the port"},
        {"tcp://host:+1", "the port"},
        {"tcp://host:12a", "the port"},
        {"ipc://", "has no path"},
        {"TCP://host:1", "is not tcp://"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (stm_endpoint_check(bad[i].endpoint, true, &err) != STM_EINPUT)
            fail_msg("accepted \"%s\"", bad[i].endpoint);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].endpoint, err.msg, bad[i].says);
    }
}

/* What a node must never tell its peers to dial. */
static void test_wildcards(void **state)
{
    (void)state;
    static const char *wild[] = {"tcp://*:7420", "tcp://0.0.0.0:7420", "tcp://[::]:7420",
                                 "tcp://[::0]:7420", "tcp://[0:0:0:0:0:0:0:0]:1"};
    static const char *concrete[] = {"tcp://127.0.0.1:7420", "tcp://10.0.0.2:7420",
                                     "tcp://[::1]:7420",     "tcp://host.example:7420",
                                     "tcp://0.0.0.1:7420",   "ipc:///tmp/x.sock"};
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        assert_true(stm_endpoint_is_wildcard(wild[i]));
        assert_false(stm_endpoint_dialable(wild[i]));
    }
    for (size_t i = 0; i < sizeof concrete / sizeof concrete[0]; i++) {
        if (stm_endpoint_is_wildcard(concrete[i]))
            fail_msg("\"%s\" taken for a wildcard", concrete[i]);
        assert_true(stm_endpoint_dialable(concrete[i]));
    }
    assert_false(stm_endpoint_dialable(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_wildcards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
