/* known_peers.c - NODE_DIR/known_peers, read and appended to (known_peers.h). */
#include "known_peers.h"

#include "config.h"
#include "keys.h"
#include "base/mem.h"
#include "base/safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *s_known_peers_header =
    "# known_peers - the public keys this node trusted on first use\n"
    "# (trust_on_first_use in node.toml), one Z85 key per line, added by the node.\n"
    "# Delete a line to stop trusting that key.\n";

stm_err known_peers_load(const char *dir, stm_id **keys, size_t *count, stm_error *err)
{
    *keys = NULL;
    *count = 0;
    char *path = config_path(dir, KNOWN_PEERS_FILE);
    stm_err rc = STM_OK;
    /* O_NONBLOCK: a FIFO is refused as not a regular file rather than waited on. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (errno != ENOENT)
            rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return rc;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = stm_error_set(err, STM_EINPUT, "%s: not a regular file", path);
    else if (st.st_size > (off_t)KNOWN_PEERS_MAX_BYTES)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: %lld bytes is more than the %u a list of keys "
                           "may have",
                           path, (long long)st.st_size, KNOWN_PEERS_MAX_BYTES);
    char line[512];
    size_t cap = 0;
    int lineno = 0;
    long at = 0;
    while (rc == STM_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        /* fgets read more than strlen sees when the line holds a NUL byte: a file of
         * NULs would otherwise read as blank lines, a damaged file taken as empty. */
        long next = ftell(f);
        if (next - at != (long)n) {
            rc = stm_error_set(err, STM_EINPUT,
                               "%s:%d: holds a NUL byte; expected one key per "
                               "line",
                               path, lineno);
            break;
        }
        at = next;
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            /* Longer than any key: fine for a comment, whose rest is skipped. */
            if (line[strspn(line, " \t")] != '#') {
                rc = stm_error_set(err, STM_EINPUT, "%s:%d: line too long for a key", path, lineno);
                break;
            }
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                if (c == '\0')
                    break;
            if (c == '\0') {
                rc = stm_error_set(err, STM_EINPUT,
                                   "%s:%d: holds a NUL byte; expected one key "
                                   "per line",
                                   path, lineno);
                break;
            }
            at = ftell(f);
            continue;
        }
        while (n > 0 && strchr(" \t\r\n", line[n - 1]))
            line[--n] = '\0';
        char *s = line + strspn(line, " \t");
        stm_id key;
        if (*s == '\0')
            continue;
        if (keys_parse(s, &key)) {
            if (*count >= CONFIG_MAX_TRUSTED) {
                rc = stm_error_set(err, STM_EINPUT, "%s:%d: more than %d keys", path, lineno,
                                   CONFIG_MAX_TRUSTED);
                break;
            }
            *keys = stm_grow(*keys, &cap, *count + 1, sizeof **keys);
            (*keys)[(*count)++] = key;
        } else if (*s != '#') {
            rc = stm_error_set(err, STM_EINPUT,
                               "%s:%d: not a key (expected one key per line, 40 Z85 characters "
                               "or 64 hex digits, or a # comment)",
                               path, lineno);
        }
    }
    if (rc == STM_OK && ferror(f))
        rc = stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    free(path);
    if (rc != STM_OK) {
        free(*keys);
        *keys = NULL;
        *count = 0;
    }
    return rc;
}

stm_err known_peers_add(const char *dir, const stm_id *key, stm_error *err)
{
    char z85[KEYS_Z85_LEN + 1];
    keys_to_z85(key, z85);
    char *path = config_path(dir, KNOWN_PEERS_FILE);
    stm_err rc = safefile_append_line(path, z85, KEYS_Z85_LEN, 0644, s_known_peers_header, err);
    free(path);
    return rc;
}
