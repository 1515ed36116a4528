/* Tests of one node per directory: node/dirlock (a second holder refused with the
 * first's pid; the lock let go of and taken again; the pid emptied) and what the
 * control socket does with the file at its ipc path (a stale socket removed, a live
 * one or a plain file refused and left; on the way out only the file it bound
 * removed; a client told at once that no node runs). */
#include "node/control.h"
#include "node/dirlock.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

static char *s_read(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[64];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_one_holder(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stm_error err = {0};
    dirlock_t *first = NULL, *second = NULL;
    assert_int_equal(stm_dirlock_acquire(dir, &first, &err), STM_OK);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    assert_string_equal(s_read(dir, DIRLOCK_FILE), pid);
    /* A flock is the open file's: a second open, even in this process, is refused. */
    assert_int_equal(stm_dirlock_acquire(dir, &second, &err), STM_ESYS);
    assert_null(second);
    char want[4200];
    snprintf(want, sizeof want, "%s: already running (pid %ld)", dir, (long)getpid());
    assert_string_equal(err.msg, want);
    stm_dirlock_release(&first);
    assert_null(first);
    stm_dirlock_release(&first); /* safe twice */
    assert_string_equal(s_read(dir, DIRLOCK_FILE), "");
    /* The file stays (dirlock.h says why), and is taken again. */
    assert_int_equal(stm_dirlock_acquire(dir, &second, &err), STM_OK);
    stm_dirlock_release(&second);
    tu_remove_tree(dir);
    free(dir);
}

/* A socket file bound and closed without being removed: what kill -9 leaves. */
static void s_stale_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof addr.sun_path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    close(fd);
}

static void test_control_socket_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512], endpoint[600];
    snprintf(path, sizeof path, "%s/control.sock", dir);
    snprintf(endpoint, sizeof endpoint, "ipc://%s", path);
    void *ctx = zmq_ctx_new();
    stm_error err = {0};
    control_t *c = NULL, *other = NULL;
    char *reply = NULL;
    size_t len;

    /* Nothing there: a client says so at once. */
    assert_int_equal(stm_control_ask(endpoint, "D", "peers", &reply, &len, &err), STM_ESYS);
    assert_string_equal(err.msg, "no node is running on D (no control socket)");

    /* A stale socket: a client says so at once; a node removes it and binds. */
    s_stale_socket(path);
    assert_int_equal(stm_control_ask(endpoint, NULL, "peers", &reply, &len, &err), STM_ESYS);
    assert_non_null(strstr(err.msg, "did not stop cleanly"));
    assert_int_equal(stm_control_new(ctx, endpoint, &c, &err), STM_OK);

    /* A live one: a second control socket on the path is refused, and the first's
     * file is left as it is. */
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(stm_control_new(ctx, endpoint, &other, &err), STM_EINPUT);
    assert_null(other);
    assert_non_null(strstr(err.msg, "answers already"));
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);

    /* Another file put in its place is not the node's to remove. */
    assert_int_equal(unlink(path), 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    stm_control_destroy(&c);
    assert_null(c);
    assert_int_equal(access(path, F_OK), 0);

    /* A file that is not a socket is refused, not removed. */
    assert_int_equal(stm_control_new(ctx, endpoint, &c, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "not a socket"));
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(unlink(path), 0);

    /* Its own file is removed on the way out. */
    assert_int_equal(stm_control_new(ctx, endpoint, &c, &err), STM_OK);
    stm_control_destroy(&c);
    assert_int_equal(access(path, F_OK), -1);
    zmq_ctx_term(ctx);
    tu_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_holder),
        cmocka_unit_test(test_control_socket_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
