/* sdnotify.h - telling systemd what `stemma node` is doing, under a Type=notify unit
 * (packaging/stemma@.service): READY=1 once its sockets are bound, STOPPING=1 as it
 * stops. The protocol is one datagram of KEY=VALUE lines to the socket $NOTIFY_SOCKET
 * names (sd_notify(3)), so libsystemd is not needed; without the variable (not under
 * systemd) nothing is sent. */
#ifndef STM_SDNOTIFY_H
#define STM_SDNOTIFY_H

/* Sends state ("READY=1\nSTATUS=...") to systemd, if it listens. A failure is said on
 * stderr once and is no error: the node runs on. */
void cli_sd_notify(const char *state);

#endif
