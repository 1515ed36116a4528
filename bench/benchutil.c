#include "benchutil.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_die(const char *what)
{
    fprintf(stderr, "benchmark: %s\n", what);
    exit(1);
}

int bench_run(char *const argv[], buf_t *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        bench_die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
        if (out)
            stm_buf_append(out, chunk, (size_t)n);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void bench_stemma(const char *stemma, buf_t *out, const char *arg, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)stemma;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    if (bench_run(argv, out) != 0) {
        fprintf(stderr, "benchmark: stemma %s failed\n", arg);
        exit(1);
    }
}

int bench_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        bench_die("no free port");
    close(s);
    return ntohs(a.sin_port);
}

long long bench_count(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 5000);
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2(h, sql, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
            v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
    }
    sqlite3_close(h);
    return v;
}

int bench_start_node(const char *stemma, const char *dir, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDERR_FILENO);
        execl(stemma, stemma, "node", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* A line "KEY: n kB" of /proc/PID/status. */
static long s_status_kib(int pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t len = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0 && line[len] == ':')
            kib = atol(line + len + 1);
    if (f)
        fclose(f);
    return kib;
}

double bench_cpu_seconds(int pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    unsigned long long ut = 0, st = 0;
    if (f && fgets(line, sizeof line, f)) {
        /* After the command's ")": field 3 is the state; utime and stime are 14, 15. */
        const char *at = strrchr(line, ')');
        if (!at || sscanf(at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                          &st) != 2)
            ut = st = 0;
    }
    if (f)
        fclose(f);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long bench_peak_kib(int pid)
{
    return s_status_kib(pid, "VmHWM");
}

void bench_set_toml(const char *dir, const char *key, const char *value)
{
    char path[1024], line[4096];
    snprintf(path, sizeof path, "%s/node.toml", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        bench_die(path);
    buf_t text = BUF_INIT;
    size_t klen = strlen(key);
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        bool match = strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == '=');
        if (match)
            stm_buf_printf(&text, "%s = %s\n", key, value);
        else
            stm_buf_printf(&text, "%s", line);
        found |= match;
    }
    fclose(f);
    if (!found)
        bench_die(key);
    f = fopen(path, "w");
    if (!f || fputs(stm_buf_str(&text), f) < 0 || fclose(f) != 0)
        bench_die(path);
    stm_buf_free(&text);
}

long bench_rss_kib(int pid)
{
    return s_status_kib(pid, "VmRSS");
}

void bench_row(const char *figure, const char *stemma, const char *baseline, const char *ratio,
               const char *target)
{
    printf("row|%s|%s|%s|%s|%s\n", figure, stemma, baseline, ratio, target);
}
