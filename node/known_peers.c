/* known_peers.c - NODE_DIR/known_peers, read and appended to (known_peers.h). */
#include "known_peers.h"

#include "config.h"
#include "keys.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"
#include "base/safefile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *s_known_peers_header =
    "# known_peers - the public keys this node trusted on first use\n"
    "# (trust_on_first_use in node.toml), one Z85 key per line, added by the node.\n"
    "# Delete a line to stop trusting that key.\n";

stm_err stm_known_peers_load(const char *dir, stm_id **keys, size_t *count, stm_error *err)
{
    *keys = NULL;
    *count = 0;
    char *path = stm_config_path(dir, KNOWN_PEERS_FILE);
    char *text;
    size_t len;
    stm_err rc = stm_readfile_all(path, KNOWN_PEERS_MAX_BYTES, &text, &len, err);
    if (rc != STM_OK && errno == ENOENT) {
        /* No key learned yet: the node makes the file at its first one. */
        stm_error_clear(err);
        free(path);
        return STM_OK;
    }
    size_t cap = 0;
    int lineno = 0;
    for (size_t at = 0; rc == STM_OK && at < len;) {
        lineno++;
        const char *start = text + at;
        const char *nl = memchr(start, '\n', len - at);
        size_t n = nl ? (size_t)(nl - start) : len - at;
        at += n + (nl != NULL);
        /* A NUL byte anywhere, even in a comment, is damage: a file of NULs must not
         * read as blank lines, a damaged file taken as empty. */
        if (memchr(start, '\0', n)) {
            rc = stm_error_set(err, STM_EINPUT,
                               "%s:%d: holds a NUL byte; expected one key per line", path,
                               lineno);
            break;
        }
        while (n > 0 && (*start == ' ' || *start == '\t'))
            start++, n--;
        while (n > 0 && strchr(" \t\r", start[n - 1]))
            n--;
        if (n == 0 || *start == '#')
            continue;
        char line[KNOWN_PEERS_MAX_LINE + 1];
        if (n > KNOWN_PEERS_MAX_LINE) {
            rc = stm_error_set(err, STM_EINPUT, "%s:%d: line too long for a key", path, lineno);
            break;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        stm_id key;
        if (!stm_keys_parse(line, &key)) {
            rc = stm_error_set(err, STM_EINPUT,
                               "%s:%d: not a key (expected one key per line, 40 Z85 characters "
                               "or 64 hex digits, or a # comment)",
                               path, lineno);
            break;
        }
        if (*count >= CONFIG_MAX_TRUSTED) {
            rc = stm_error_set(err, STM_EINPUT, "%s:%d: more than %d keys", path, lineno,
                               CONFIG_MAX_TRUSTED);
            break;
        }
        *keys = stm_grow(*keys, &cap, *count + 1, sizeof **keys);
        (*keys)[(*count)++] = key;
    }
    free(text);
    free(path);
    if (rc != STM_OK) {
        free(*keys);
        *keys = NULL;
        *count = 0;
    }
    return rc;
}

stm_err stm_known_peers_add(const char *dir, const stm_id *key, stm_error *err)
{
    char z85[KEYS_Z85_LEN + 1];
    stm_keys_to_z85(key, z85);
    char *path = stm_config_path(dir, KNOWN_PEERS_FILE);
    stm_err rc = stm_safefile_append_line(path, z85, KEYS_Z85_LEN, 0644, s_known_peers_header, err);
    free(path);
    return rc;
}

stm_err stm_known_peers_remove(const char *dir, const stm_id *key, bool *removed, stm_error *err)
{
    *removed = false;
    char *path = stm_config_path(dir, KNOWN_PEERS_FILE);
    char *text;
    size_t len;
    stm_err rc = stm_readfile_all(path, KNOWN_PEERS_MAX_BYTES, &text, &len, err);
    if (rc != STM_OK) {
        if (errno == ENOENT) { /* no file: no line holds it */
            stm_error_clear(err);
            rc = STM_OK;
        }
        free(path);
        return rc;
    }
    buf_t out = BUF_INIT;
    for (size_t at = 0; at < len;) {
        const char *start = text + at;
        const char *nl = memchr(start, '\n', len - at);
        size_t n = nl ? (size_t)(nl - start) : len - at;
        at += n + (nl != NULL);
        /* The key as stm_known_peers_load reads it: blanks around it trimmed. */
        const char *k = start;
        size_t kn = n;
        while (kn > 0 && (*k == ' ' || *k == '\t'))
            k++, kn--;
        while (kn > 0 && strchr(" \t\r", k[kn - 1]))
            kn--;
        char line[KNOWN_PEERS_MAX_LINE + 1];
        stm_id found;
        if (kn > 0 && kn <= KNOWN_PEERS_MAX_LINE && *k != '#') {
            memcpy(line, k, kn);
            line[kn] = '\0';
            if (stm_keys_parse(line, &found) && stm_id_equal(&found, key)) {
                *removed = true;
                continue;
            }
        }
        stm_buf_append(&out, start, n);
        stm_buf_putc(&out, '\n');
    }
    if (*removed)
        rc = stm_safefile_write(path, out.data, out.len, 0644, false, err);
    stm_buf_free(&out);
    free(text);
    free(path);
    return rc;
}
