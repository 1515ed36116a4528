/* Tests of node/pollfd: the one descriptor an application polls for a node's sockets
 * (include/stemma.h, stemma_node_fd). A message arriving on a watched ZeroMQ socket
 * makes it readable; once the socket is read dry it is quiet again; a socket no longer
 * watched wakes it no more, and a plain descriptor (a UDP socket's) is watched as it
 * is. A poll that must wake waits at most 10 s: that bound only matters when it is
 * broken. */
#include "node/pollfd.h"

#include <poll.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

/* Whether the set's descriptor is readable within ms. */
static bool s_readable(const pollfd_t *p, int ms)
{
    struct pollfd item = {.fd = stm_pollfd_fd(p), .events = POLLIN};
    return poll(&item, 1, ms) == 1 && (item.revents & POLLIN);
}

/* Reads every message s holds, as stm_node_step does, and asks again (ZMQ_EVENTS) so
 * that its descriptor is drained. */
static int s_drain(void *s)
{
    char buf[16];
    int n = 0;
    while (zmq_recv(s, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        n++;
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 0), 0);
    return n;
}

static void test_a_message_wakes_it_and_reading_quiets_it(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *rx = zmq_socket(ctx, ZMQ_PULL), *tx = zmq_socket(ctx, ZMQ_PUSH);
    assert_int_equal(zmq_bind(rx, "inproc://pollfd"), 0);
    assert_int_equal(zmq_connect(tx, "inproc://pollfd"), 0);
    stm_error err = {0};
    pollfd_t *p = NULL;
    assert_int_equal(stm_pollfd_new(&p, &err), STM_OK);
    /* The items a node's loop waits on: a socket, an entry with nothing (an insecure
     * node's ZAP slot), and a plain descriptor. */
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    zmq_pollitem_t items[] = {{rx, 0, ZMQ_POLLIN, 0},
                              {NULL, -1, 0, 0},
                              {NULL, pipefd[0], ZMQ_POLLIN, 0}};
    assert_int_equal(stm_pollfd_watch(p, items, 3, &err), STM_OK);
    s_drain(rx);
    assert_false(s_readable(p, 0));

    assert_int_equal(zmq_send(tx, "one", 3, 0), 3);
    assert_true(s_readable(p, 10000));
    assert_int_equal(s_drain(rx), 1);
    assert_false(s_readable(p, 0));

    /* Twice more, watched anew each time as a step does: still woken. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stm_pollfd_watch(p, items, 3, &err), STM_OK);
        assert_int_equal(zmq_send(tx, "again", 5, 0), 5);
        assert_true(s_readable(p, 10000));
        assert_int_equal(s_drain(rx), 1);
        assert_false(s_readable(p, 0));
    }

    /* The plain descriptor. */
    assert_int_equal(write(pipefd[1], "x", 1), 1);
    assert_true(s_readable(p, 10000));
    char c;
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    assert_false(s_readable(p, 0));

    /* The socket no longer watched: a message for it does not wake the set. */
    assert_int_equal(stm_pollfd_watch(p, items + 1, 2, &err), STM_OK);
    assert_int_equal(zmq_send(tx, "unwatched", 9, 0), 9);
    assert_false(s_readable(p, 200));

    stm_pollfd_destroy(&p);
    stm_pollfd_destroy(&p); /* safe twice */
    close(pipefd[0]);
    close(pipefd[1]);
    zmq_close(tx);
    zmq_close(rx);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_message_wakes_it_and_reading_quiets_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
