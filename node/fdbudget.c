/* fdbudget.c - the file descriptors a node may open (fdbudget.h). */
#include "fdbudget.h"
#include "base/log.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/resource.h>

/* The descriptors open now, counted in /proc/self/fd (less the one the count opens);
 * a guess of 32 where there is no /proc. */
static long s_open_now(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 32;
    long n = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

void stm_fdbudget_check(size_t want, fd_budget *out)
{
    *out = (fd_budget){.limit = -1, .hard = -1, .peers = SIZE_MAX, .want = want};
    out->fixed = s_open_now() + FDBUDGET_RESERVE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    rlim_t need = (rlim_t)out->fixed + (rlim_t)want * FDBUDGET_PER_PEER;
    if (rl.rlim_cur < need && rl.rlim_max > rl.rlim_cur) {
        /* As far as needed, no further: the hard limit is the administrator's. */
        struct rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max == RLIM_INFINITY || need < rl.rlim_max ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            out->raised_from = (long)rl.rlim_cur;
            rl = raised;
        }
    }
    out->limit = (long)rl.rlim_cur;
    out->hard = rl.rlim_max == RLIM_INFINITY ? -1 : (long)rl.rlim_max;
    out->peers = out->limit > out->fixed
                     ? (size_t)(out->limit - out->fixed) / FDBUDGET_PER_PEER
                     : 0;
}

size_t stm_fdbudget_peers(size_t configured, int max_learned)
{
    size_t want = configured + 2 * (size_t)(max_learned > 0 ? max_learned : 0);
    fd_budget b;
    stm_fdbudget_check(want, &b);
    if (b.peers >= want)
        return b.peers;
    size_t learned = b.peers > configured ? b.peers - configured : 0;
    stm_log_event(STM_LOG_WARN, "fd-budget", NULL,
                  "the open-file limit (RLIMIT_NOFILE) is %ld%s: beside %ld descriptors open "
                  "or kept in reserve, it leaves room for %zu peers at %d each, short of the "
                  "%zu this node may keep (%zu in [peers], %d learned dialled and as many let "
                  "in): it keeps %zu learned peers at most%s; raise the limit (ulimit -n, or "
                  "LimitNOFILE= in its systemd unit) to %ld",
                  b.limit, b.hard == b.limit ? ", its hard limit too" : "", b.fixed, b.peers,
                  FDBUDGET_PER_PEER, want, configured, max_learned, learned,
                  configured > b.peers ? ", and dials its configured peers beyond it" : "",
                  b.fixed + (long)want * FDBUDGET_PER_PEER);
    return b.peers;
}
