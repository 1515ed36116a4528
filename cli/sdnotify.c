/* sdnotify.c - a datagram to $NOTIFY_SOCKET (sdnotify.h). */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void cli_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    /* A path, or an abstract name written with a leading '@'. */
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) {
        fprintf(stderr, "stemma node: NOTIFY_SOCKET '%s' is no socket path: systemd is not "
                        "told the node's state\n", path);
        return;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        fprintf(stderr, "stemma node: telling systemd '%s': %s\n", state, strerror(errno));
    if (fd >= 0)
        close(fd);
}
