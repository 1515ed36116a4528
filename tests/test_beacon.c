/* Tests of node/beacon: the beacon's 40 bytes both ways, every malformed datagram
 * refused before a field is used, which bound inboxes may be advertised, and the real
 * socket on loopback: two beacons sharing one UDP port each hear every beacon sent to
 * 127.255.255.255, a stray datagram is malformed, a port held by a program that does not
 * share it is refused with a message naming it. */
#include "node/beacon.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static beacon_msg s_msg(unsigned char fill, uint16_t port, bool insecure)
{
    beacon_msg m;
    memset(m.id.bytes, fill, sizeof m.id.bytes);
    m.id.bytes[0] = 0x01; /* not all alike, so an order mistake shows */
    m.port = port;
    m.insecure = insecure;
    return m;
}

static void test_bytes(void **state)
{
    (void)state;
    beacon_msg m = s_msg(0xab, 7420, false), back;
    unsigned char b[BEACON_BYTES];
    stm_beacon_encode(&m, b);
    /* The layout docs/protocol.md gives, byte by byte. */
    assert_memory_equal(b, "STMD", 4);
    assert_int_equal(b[4], 1);
    assert_int_equal(b[5], 0);
    assert_memory_equal(b + 6, m.id.bytes, 32);
    assert_int_equal(b[38], 7420 >> 8);
    assert_int_equal(b[39], 7420 & 0xff);
    stm_error err = {0};
    assert_int_equal(stm_beacon_decode(b, sizeof b, &back, &err), STM_OK);
    assert_memory_equal(back.id.bytes, m.id.bytes, 32);
    assert_int_equal(back.port, 7420);
    assert_false(back.insecure);

    m = s_msg(0x5a, 65535, true);
    stm_beacon_encode(&m, b);
    assert_int_equal(b[5], BEACON_FLAG_INSECURE);
    assert_int_equal(stm_beacon_decode(b, sizeof b, &back, &err), STM_OK);
    assert_true(back.insecure);
    assert_int_equal(back.port, 65535);
    /* Flag bits this version does not know are a later version's: ignored. */
    b[5] = 0xfe;
    assert_int_equal(stm_beacon_decode(b, sizeof b, &back, &err), STM_OK);
    assert_false(back.insecure);
}

static void test_malformed(void **state)
{
    (void)state;
    beacon_msg m = s_msg(0x11, 9000, false);
    unsigned char good[BEACON_BYTES + 1];
    stm_beacon_encode(&m, good);
    good[BEACON_BYTES] = 0;
    static const struct {
        int at; /* the byte changed (-1: none) */
        unsigned char to;
        size_t len;
        const char *says;
    } bad[] = {
        {-1, 0, 0, "a datagram of 0 bytes (a beacon has 40)"},
        {-1, 0, 39, "a datagram of 39 bytes"},
        {-1, 0, 41, "a datagram of 41 bytes"},
        {3, 'B', 40, "without the beacon's magic \"STMD\""}, /* a bundle's "STMB" */
        {0, 's', 40, "without the beacon's magic"},
        {4, 2, 40, "a beacon of version 2 (this node reads version 1)"},
        {4, 0, 40, "a beacon of version 0"},
        {38, 0, 40, NULL}, /* with 39 below: port 0 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char b[BEACON_BYTES + 1];
        memcpy(b, good, sizeof b);
        if (bad[i].at >= 0)
            b[bad[i].at] = bad[i].to;
        if (bad[i].at == 38)
            b[39] = 0;
        beacon_msg out = s_msg(0x77, 1, true), before = out;
        stm_error err = {0};
        assert_int_equal(stm_beacon_decode(b, bad[i].len, &out, &err), STM_EPROTO);
        const char *says = bad[i].says ? bad[i].says : "a beacon naming port 0";
        if (!strstr(err.msg, says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err.msg, says);
        /* Nothing of it was used. */
        assert_memory_equal(&out, &before, sizeof out);
    }
}

static void test_mesh_port(void **state)
{
    (void)state;
    static const struct {
        const char *bound, *broadcast;
        int port;
        const char *why; /* a word of the reason when port is 0 */
    } cases[] = {
        {"tcp://0.0.0.0:7420", "255.255.255.255", 7420, NULL},
        {"tcp://*:7420", "192.168.1.255", 7420, NULL},
        {"tcp://[::]:7421", "255.255.255.255", 7421, NULL},
        {"tcp://10.0.0.5:7420", "255.255.255.255", 7420, NULL},
        {"tcp://127.0.0.1:7420", "127.255.255.255", 7420, NULL},
        {"tcp://0.0.0.0:7420", "127.255.255.255", 7420, NULL},
        {"", "255.255.255.255", 0, "binds nowhere"},
        {"ipc:///tmp/x.sock", "255.255.255.255", 0, "ipc://"},
        {"tcp://127.0.0.1:7420", "255.255.255.255", 0, "loopback address"},
        {"tcp://127.1.2.3:7420", "10.0.0.255", 0, "loopback address"},
        {"tcp://[::1]:7420", "255.255.255.255", 0, "IPv6"},
        {"tcp://[fe80::1]:7420", "255.255.255.255", 0, "IPv6"},
        {"tcp://10.0.0.5:7420", "127.255.255.255", 0, "not bound on loopback"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = "unset";
        int port = stm_beacon_mesh_port(cases[i].bound, cases[i].broadcast, &why);
        if (port != cases[i].port)
            fail_msg("%s to %s: port %d, expected %d", cases[i].bound, cases[i].broadcast, port,
                     cases[i].port);
        if (cases[i].why && (!why || !strstr(why, cases[i].why)))
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].bound, why ? why : "(null)",
                     cases[i].why);
        if (!cases[i].why)
            assert_null(why);
    }
}

/* A UDP port nothing is bound to now (the kernel's choice). */
static int s_free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The next beacon b hears, waiting for it (a generous bound: it is on loopback). */
static beacon_read s_hear(beacon_t *b, beacon_heard *out, stm_error *err)
{
    struct pollfd p = {.fd = stm_beacon_fd(b), .events = POLLIN};
    for (int tries = 0; tries < 100; tries++) {
        beacon_read r = stm_beacon_next(b, out, err);
        if (r != BEACON_NONE)
            return r;
        poll(&p, 1, 100);
    }
    return BEACON_NONE;
}

static void test_socket(void **state)
{
    (void)state;
    int port = s_free_udp_port();
    beacon_options oa = {port, 1000, "127.255.255.255", s_msg(0xaa, 7001, false)};
    beacon_options ob = {port, 1000, "127.255.255.255", s_msg(0xbb, 0, false)}; /* listens */
    beacon_t *a = NULL, *b = NULL;
    stm_error err = {0};
    assert_int_equal(stm_beacon_new(&oa, &a, &err), STM_OK);
    assert_int_equal(stm_beacon_new(&ob, &b, &err), STM_OK); /* the same port: shared */
    assert_true(stm_beacon_sending(a));
    assert_false(stm_beacon_sending(b));
    assert_int_equal(stm_beacon_send_at(a), 0); /* the first at once */
    assert_int_equal(stm_beacon_send_at(b), INT64_MAX);
    assert_int_equal(stm_beacon_port(a), port);
    assert_string_equal(stm_beacon_broadcast(a), "127.255.255.255");
    assert_int_equal(stm_beacon_interval_ms(a), 1000);

    stm_beacon_send(a, 5000);
    assert_int_equal(stm_beacon_send_at(a), 6000);
    assert_int_equal(stm_beacon_counts(a)->sent, 1);
    stm_beacon_send(b, 5000); /* a listener sends nothing */
    assert_int_equal(stm_beacon_counts(b)->sent, 0);
    assert_int_equal(stm_beacon_send_at(b), INT64_MAX);

    /* Both sockets on the port hear it: the sender too (its own, which the node skips). */
    beacon_heard h;
    beacon_t *both[] = {a, b};
    for (int i = 0; i < 2; i++) {
        memset(&h, 0, sizeof h);
        assert_int_equal(s_hear(both[i], &h, &err), BEACON_HEARD);
        assert_memory_equal(h.msg.id.bytes, oa.self.id.bytes, 32);
        assert_int_equal(h.msg.port, 7001);
        assert_string_equal(h.address, "127.0.0.1");
        assert_string_equal(h.endpoint, "tcp://127.0.0.1:7001");
    }
    assert_int_equal(stm_beacon_next(b, &h, &err), BEACON_NONE);

    /* A stray datagram to the port is malformed, with where it came from. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char junk[100] = "STMD";
    assert_int_equal(sendto(fd, junk, sizeof junk, 0, (struct sockaddr *)&to, sizeof to),
                     (ssize_t)sizeof junk);
    close(fd);
    /* Unicast goes to one of the sockets sharing the port: whichever it is says so. */
    beacon_read ra = BEACON_NONE;
    struct pollfd p[2] = {{.fd = stm_beacon_fd(a), .events = POLLIN},
                          {.fd = stm_beacon_fd(b), .events = POLLIN}};
    for (int tries = 0; tries < 100 && ra == BEACON_NONE; tries++) {
        ra = stm_beacon_next(a, &h, &err);
        if (ra == BEACON_NONE)
            ra = stm_beacon_next(b, &h, &err);
        if (ra == BEACON_NONE)
            poll(p, 2, 100);
    }
    assert_int_equal(ra, BEACON_MALFORMED);
    assert_non_null(strstr(err.msg, "from 127.0.0.1: a datagram of 100 bytes"));

    /* What the node made of each is counted; its own beacons are not. */
    stm_beacon_tally(b, BEACON_OWN);
    stm_beacon_tally(b, BEACON_KNOWN);
    stm_beacon_tally(b, BEACON_MET);
    stm_beacon_tally(b, BEACON_UNTRUSTED);
    stm_beacon_tally(b, BEACON_UNTRUSTED);
    stm_beacon_tally(b, BEACON_OTHER_MODE);
    stm_beacon_tally(b, BEACON_FULL);
    const beacon_counts *c = stm_beacon_counts(b);
    assert_int_equal(c->heard, 6);
    assert_int_equal(c->untrusted, 2);
    assert_int_equal(c->other_mode, 1);
    assert_int_equal(c->met, 1);

    stm_beacon_destroy(&a);
    stm_beacon_destroy(&a); /* safe twice */
    stm_beacon_destroy(&b);
}

static void test_tell_once(void **state)
{
    (void)state;
    beacon_options o = {s_free_udp_port(), 1000, "127.255.255.255", s_msg(1, 0, false)};
    beacon_t *b = NULL;
    stm_error err = {0};
    assert_int_equal(stm_beacon_new(&o, &b, &err), STM_OK);
    stm_id k;
    memset(&k, 0, sizeof k);
    assert_true(stm_beacon_tell_once(b, &k));
    assert_false(stm_beacon_tell_once(b, &k));
    /* Bounded: after BEACON_MAX_TOLD keys, no key is named again. */
    for (int i = 1; i < BEACON_MAX_TOLD; i++) {
        k.bytes[0] = (unsigned char)i;
        k.bytes[1] = (unsigned char)(i >> 8);
        assert_true(stm_beacon_tell_once(b, &k));
    }
    k.bytes[2] = 1;
    assert_false(stm_beacon_tell_once(b, &k));
    stm_beacon_destroy(&b);
}

static void test_port_held(void **state)
{
    (void)state;
    /* A program holding the port without sharing it. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    int port = ntohs(a.sin_port);
    beacon_options o = {port, 1000, "255.255.255.255", s_msg(1, 7420, false)};
    beacon_t *b = NULL;
    stm_error err = {0};
    assert_int_equal(stm_beacon_new(&o, &b, &err), STM_ESYS);
    assert_null(b);
    char want[128];
    snprintf(want, sizeof want,
             "discovery: UDP port %d is in use by a program that does not share it", port);
    if (!strstr(err.msg, want))
        fail_msg("\"%s\" does not say \"%s\"", err.msg, want);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mesh_port), cmocka_unit_test(test_socket),
        cmocka_unit_test(test_tell_once), cmocka_unit_test(test_port_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
