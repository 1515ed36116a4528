/* endpoint.c - endpoints as node.toml and the command line give them (endpoint.h). */
#include "endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static bool s_is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

stm_err stm_endpoint_check(const char *endpoint, bool bind, stm_error *err)
{
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        size_t n = strlen(endpoint + 6);
        if (n == 0)
            return stm_error_set(err, STM_EINPUT, "'%s' has no path: expected ipc://PATH",
                                 endpoint);
        if (n > ENDPOINT_MAX_IPC_PATH)
            return stm_error_set(err, STM_EINPUT,
                                 "'%.60s...': the path is %zu bytes, longer than the %d a Unix "
                                 "socket's name may have",
                                 endpoint, n, ENDPOINT_MAX_IPC_PATH);
        return STM_OK;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return stm_error_set(err, STM_EINPUT, "'%.200s' is not tcp://HOST:PORT or ipc://PATH",
                             endpoint);
    const char *host = endpoint + 6, *colon = strrchr(host, ':');
    if (!colon)
        return stm_error_set(err, STM_EINPUT, "'%.200s' has no port: expected tcp://HOST:PORT",
                             endpoint);
    size_t hlen = (size_t)(colon - host);
    bool host_ok = hlen > 0;
    if (host_ok && host[0] == '[') {
        /* [IPv6]: hex digits, colons, dots (an embedded IPv4) and nothing else. */
        host_ok = hlen > 2 && host[hlen - 1] == ']';
        for (size_t i = 1; host_ok && i < hlen - 1; i++)
            host_ok = strchr("0123456789abcdefABCDEF:.", host[i]) != NULL;
    } else if (host_ok && !(bind && hlen == 1 && host[0] == '*')) {
        for (size_t i = 0; host_ok && i < hlen; i++)
            host_ok = s_is_host_char(host[i]);
    }
    if (!host_ok)
        return stm_error_set(err, STM_EINPUT,
                             "'%.200s': the host must be a name, an IPv4 address or a "
                             "[bracketed] IPv6 address%s",
                             endpoint, bind ? ", or *" : "");
    const char *port = colon + 1;
    size_t plen = strlen(port);
    long value = 0;
    bool port_ok = plen > 0 && plen <= 5 && strspn(port, "0123456789") == plen;
    if (port_ok)
        value = strtol(port, NULL, 10);
    if (!port_ok || value < 1 || value > 65535)
        return stm_error_set(err, STM_EINPUT, "'%.200s': the port must be a number from 1 to 65535",
                             endpoint);
    return STM_OK;
}

bool stm_endpoint_is_wildcard(const char *endpoint)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6, *colon = strrchr(host, ':');
    if (!colon)
        return false;
    size_t hlen = (size_t)(colon - host);
    if (hlen == 1 && host[0] == '*')
        return true;
    char text[64];
    if (hlen >= sizeof text)
        return false;
    bool v6 = hlen > 2 && host[0] == '[' && host[hlen - 1] == ']';
    memcpy(text, v6 ? host + 1 : host, v6 ? hlen - 2 : hlen);
    text[v6 ? hlen - 2 : hlen] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (v6)
        return inet_pton(AF_INET6, text, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6);
    return inet_pton(AF_INET, text, &a4) == 1 && a4.s_addr == htonl(INADDR_ANY);
}

bool stm_endpoint_dialable(const char *endpoint)
{
    return endpoint[0] != '\0' && !stm_endpoint_is_wildcard(endpoint);
}
