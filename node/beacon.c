/* beacon.c - LAN discovery's beacon: its bytes, its socket, its schedule (beacon.h). */
#include "beacon.h"
#include "base/log.h"
#include "base/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct beacon {
    int fd;                            /* the UDP socket, non-blocking */
    int port;                          /* its port */
    int interval_ms;                   /* between two beacons */
    char broadcast[16];                /* where beacons go, dotted */
    struct sockaddr_in to;             /* the same, with the port */
    unsigned char bytes[BEACON_BYTES]; /* this node's beacon, encoded once */
    bool sending;                      /* false: it only listens */
    int64_t next_send_ms;              /* the next beacon's deadline; INT64_MAX when none */
    bool send_failing;                 /* the last send was refused (logged once) */
    beacon_counts counts;              /* what stemma stats shows */
    stm_id told[BEACON_MAX_TOLD];      /* keys named in the log already */
    size_t ntold;                      /* how many */
};

/* ---- the bytes ---- */

void stm_beacon_encode(const beacon_msg *m, unsigned char out[BEACON_BYTES])
{
    memcpy(out, BEACON_MAGIC, 4);
    out[4] = BEACON_VERSION;
    out[5] = m->insecure ? BEACON_FLAG_INSECURE : 0;
    memcpy(out + 6, m->id.bytes, STM_ID_BYTES);
    out[38] = (unsigned char)(m->port >> 8);
    out[39] = (unsigned char)(m->port & 0xff);
}

stm_err stm_beacon_decode(const void *data, size_t len, beacon_msg *m, stm_error *err)
{
    const unsigned char *p = data;
    /* The size first: nothing is read from a datagram of another size (invariant 1). */
    if (len != BEACON_BYTES)
        return stm_error_set(err, STM_EPROTO, "a datagram of %zu bytes (a beacon has %d)", len,
                             BEACON_BYTES);
    if (memcmp(p, BEACON_MAGIC, 4) != 0)
        return stm_error_set(err, STM_EPROTO, "a datagram without the beacon's magic \"%s\"",
                             BEACON_MAGIC);
    if (p[4] != BEACON_VERSION)
        return stm_error_set(err, STM_EPROTO, "a beacon of version %d (this node reads version %d)",
                             p[4], BEACON_VERSION);
    uint16_t port = (uint16_t)((p[38] << 8) | p[39]);
    if (port == 0)
        return stm_error_set(err, STM_EPROTO, "a beacon naming port 0");
    m->insecure = (p[5] & BEACON_FLAG_INSECURE) != 0;
    memcpy(m->id.bytes, p + 6, STM_ID_BYTES);
    m->port = port;
    return STM_OK;
}

/* The host of a tcp:// endpoint, brackets dropped, into out (size bytes); false when
 * it is not tcp:// or does not fit. *port gets its port. */
static bool s_host(const char *endpoint, char *out, size_t size, long *port)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6, *colon = strrchr(host, ':');
    if (!colon)
        return false;
    size_t hlen = (size_t)(colon - host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen >= size)
        return false;
    memcpy(out, host, hlen);
    out[hlen] = '\0';
    char *end;
    *port = strtol(colon + 1, &end, 10);
    return *end == '\0' && *port >= 1 && *port <= 65535;
}

static bool s_loopback4(struct in_addr a)
{
    return (ntohl(a.s_addr) >> 24) == 127;
}

int stm_beacon_mesh_port(const char *bound, const char *broadcast, const char **why)
{
    char host[64];
    long port;
    struct in_addr a4, to;
    struct in6_addr a6;
    *why = NULL;
    if (!bound[0]) {
        *why = "it binds nowhere ([node] bind is \"\"), so no node can dial it";
        return 0;
    }
    if (!s_host(bound, host, sizeof host, &port)) {
        *why = "its inbox is not on TCP ([node] bind is ipc://), so no node on the network "
               "can dial it";
        return 0;
    }
    bool from_loopback = inet_pton(AF_INET, broadcast, &to) == 1 && s_loopback4(to);
    bool wildcard = strcmp(host, "*") == 0 ||
                    (inet_pton(AF_INET, host, &a4) == 1 && a4.s_addr == htonl(INADDR_ANY)) ||
                    (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6));
    if (wildcard)
        return (int)port;
    /* Nodes that hear a beacon dial the IPv4 address it came from. */
    if (inet_pton(AF_INET, host, &a4) != 1) {
        *why = "its inbox is bound to an IPv6 address, and nodes dial the IPv4 address a "
               "beacon comes from; bind tcp://*:PORT or an IPv4 address";
        return 0;
    }
    if (s_loopback4(a4) && !from_loopback) {
        *why = "its inbox is bound to a loopback address, which no other machine can dial; "
               "bind tcp://*:PORT (and set advertise) or an address of the network";
        return 0;
    }
    if (!s_loopback4(a4) && from_loopback) {
        *why = "beacons go to a loopback address ([discovery] broadcast), and its inbox is "
               "not bound on loopback";
        return 0;
    }
    return (int)port;
}

/* ---- the socket ---- */

static stm_err s_sys(stm_error *err, int port, const char *what)
{
    return stm_error_set(err, STM_ESYS, "discovery: UDP port %d: %s: %s", port, what,
                         strerror(errno));
}

stm_err stm_beacon_new(const beacon_options *o, beacon_t **out, stm_error *err)
{
    beacon_t *b = stm_calloc(1, sizeof *b);
    b->fd = -1;
    b->port = o->port;
    b->interval_ms = o->interval_ms;
    snprintf(b->broadcast, sizeof b->broadcast, "%s", o->broadcast);
    b->to.sin_family = AF_INET;
    b->to.sin_port = htons((uint16_t)o->port);
    stm_err rc = STM_OK;
    if (inet_pton(AF_INET, o->broadcast, &b->to.sin_addr) != 1)
        rc = stm_error_set(err, STM_EINPUT, "discovery: '%s' is not an IPv4 address", o->broadcast);
    b->sending = o->self.port != 0;
    b->next_send_ms = b->sending ? 0 : INT64_MAX;
    stm_beacon_encode(&o->self, b->bytes);
    if (rc == STM_OK) {
        b->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (b->fd < 0)
            rc = s_sys(err, o->port, "opening a socket");
    }
    /* Every node on this machine binds the one port: with SO_REUSEADDR each socket
     * gets its own copy of every broadcast (Linux delivers broadcasts to all of them;
     * SO_REUSEPORT alone would share out unicast datagrams, which beacons are not).
     * SO_REUSEPORT as well lets the port be shared with a program that set only it. */
    int on = 1;
    if (rc == STM_OK && setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        rc = s_sys(err, o->port, "SO_REUSEADDR");
#ifdef SO_REUSEPORT
    if (rc == STM_OK && setsockopt(b->fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
        rc = s_sys(err, o->port, "SO_REUSEPORT");
#endif
    if (rc == STM_OK && setsockopt(b->fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) != 0)
        rc = s_sys(err, o->port, "SO_BROADCAST");
    if (rc == STM_OK) {
        /* Every interface: a beacon is heard from whichever network it comes. */
        struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
        any.sin_addr.s_addr = htonl(INADDR_ANY);
        if (bind(b->fd, (struct sockaddr *)&any, sizeof any) != 0)
            rc = errno == EADDRINUSE
                     ? stm_error_set(err, STM_ESYS,
                                     "discovery: UDP port %d is in use by a program that does "
                                     "not share it (SO_REUSEADDR); stop it, or set [discovery] "
                                     "port on every node",
                                     o->port)
                     : s_sys(err, o->port, "binding");
    }
    if (rc != STM_OK) {
        stm_beacon_destroy(&b);
        return rc;
    }
    *out = b;
    return STM_OK;
}

void stm_beacon_destroy(beacon_t **self_p)
{
    beacon_t *b = *self_p;
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    free(b);
    *self_p = NULL;
}

int stm_beacon_fd(const beacon_t *b)
{
    return b->fd;
}

bool stm_beacon_sending(const beacon_t *b)
{
    return b->sending;
}

int stm_beacon_port(const beacon_t *b)
{
    return b->port;
}

const char *stm_beacon_broadcast(const beacon_t *b)
{
    return b->broadcast;
}

int stm_beacon_interval_ms(const beacon_t *b)
{
    return b->interval_ms;
}

/* ---- sending ---- */

int64_t stm_beacon_send_at(const beacon_t *b)
{
    return b->next_send_ms;
}

void stm_beacon_send(beacon_t *b, int64_t now_ms)
{
    if (!b->sending)
        return;
    b->next_send_ms = now_ms + b->interval_ms;
    ssize_t n;
    do
        n = sendto(b->fd, b->bytes, BEACON_BYTES, 0, (const struct sockaddr *)&b->to, sizeof b->to);
    while (n < 0 && errno == EINTR);
    if (n == BEACON_BYTES) {
        b->counts.sent++;
        if (b->send_failing)
            stm_log_event(STM_LOG_INFO, "discovery", NULL, "beacons to %s:%d are sent again",
                          b->broadcast, b->port);
        b->send_failing = false;
        return;
    }
    /* A full socket buffer drops one beacon; the next goes at its time. Anything else
     * is said once, until a beacon leaves again. */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
        return;
    if (!b->send_failing)
        stm_log_event(STM_LOG_WARN, "discovery", NULL,
                      "cannot send beacons to %s:%d: %s (tried again every %d ms; with no "
                      "default route, set [discovery] broadcast to the network's broadcast "
                      "address)",
                      b->broadcast, b->port, n < 0 ? strerror(errno) : "sent in part",
                      b->interval_ms);
    b->send_failing = true;
}

/* ---- hearing ---- */

/* An address a node could be listening at: not 0.0.0.0, 255.255.255.255, multicast or
 * class E. (A network's own broadcast address cannot be told apart here; dialling it
 * fails, and costs one socket.) */
static bool s_unicast4(struct in_addr a)
{
    uint32_t h = ntohl(a.s_addr);
    return h != INADDR_ANY && h < 0xe0000000u;
}

beacon_read stm_beacon_next(beacon_t *b, beacon_heard *out, stm_error *err)
{
    unsigned char buf[BEACON_BYTES + 1];
    struct sockaddr_in from;
    socklen_t fromlen;
    ssize_t n;
    do {
        fromlen = sizeof from;
        /* MSG_TRUNC: the datagram's whole size, even when it is longer than buf. */
        n = recvfrom(b->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from,
                     &fromlen);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return BEACON_NONE; /* EAGAIN; a UDP socket reports nothing else that matters */
    if (fromlen < sizeof from || from.sin_family != AF_INET) {
        stm_error_set(err, STM_EPROTO, "a datagram from an address that is not IPv4");
        return BEACON_MALFORMED;
    }
    char address[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, &from.sin_addr, address, sizeof address))
        snprintf(address, sizeof address, "?");
    /* A longer datagram was cut to buf: its size alone is told, nothing of it read. */
    size_t len = (size_t)n;
    beacon_msg m;
    stm_error why = {0};
    if (len > sizeof buf) {
        stm_error_set(err, STM_EPROTO, "from %s: a datagram of %zu bytes (a beacon has %d)",
                      address, len, BEACON_BYTES);
        return BEACON_MALFORMED;
    }
    if (stm_beacon_decode(buf, len, &m, &why) != STM_OK) {
        stm_error_set(err, STM_EPROTO, "from %s: %s", address, why.msg);
        return BEACON_MALFORMED;
    }
    if (!s_unicast4(from.sin_addr)) {
        stm_error_set(err, STM_EPROTO, "a beacon from %s, which no node can be dialled at",
                      address);
        return BEACON_MALFORMED;
    }
    out->msg = m;
    snprintf(out->address, sizeof out->address, "%s", address);
    snprintf(out->endpoint, sizeof out->endpoint, "tcp://%s:%u", address, (unsigned)m.port);
    return BEACON_HEARD;
}

void stm_beacon_tally(beacon_t *b, beacon_outcome what)
{
    if (what == BEACON_OWN)
        return;
    b->counts.heard++;
    if (what == BEACON_UNTRUSTED)
        b->counts.untrusted++;
    else if (what == BEACON_OTHER_MODE)
        b->counts.other_mode++;
    else if (what == BEACON_MET)
        b->counts.met++;
}

const beacon_counts *stm_beacon_counts(const beacon_t *b)
{
    return &b->counts;
}

bool stm_beacon_tell_once(beacon_t *b, const stm_id *key)
{
    for (size_t i = 0; i < b->ntold; i++)
        if (stm_id_equal(&b->told[i], key))
            return false;
    if (b->ntold == BEACON_MAX_TOLD)
        return false;
    b->told[b->ntold++] = *key;
    return true;
}
