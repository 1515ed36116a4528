/* error.h - the one error enum of stemma, and the message buffer that goes with it.
 *
 * Every function that can fail because of something outside the program (a file, a
 * peer, the command line, SQLite, the operating system) returns an stm_err and, when
 * given an stm_error, writes a message a user can act on into it. Codes are never
 * renumbered: scripts and peers may see them. Out of memory is not a code here: the
 * allocation wrappers in mem.h abort. */
#ifndef STM_ERROR_H
#define STM_ERROR_H

#include <stddef.h>

/* On a function whose failure the caller must look at: ignoring the stm_err it
 * returns is a warning (an error under -Werror). The helpers that set an error and
 * return its code for convenience (stm_error_set and its kin) go without it. */
#define STM_NODISCARD __attribute__((warn_unused_result))

typedef enum {
    STM_OK = 0,       /* success */
    STM_EUSAGE = 1,   /* the command line or an API argument is wrong */
    STM_EINPUT = 2,   /* bad input: a file, a migration, a TOML document */
    STM_ECORRUPT = 3, /* stored data fails its own checks (checksum, truncation) */
    STM_EPROTO = 4,   /* a peer broke the wire protocol */
    STM_EDB = 5,      /* SQLite refused an operation */
    STM_ESYS = 6,     /* the operating system refused (I/O, permissions) */
} stm_err;

/* Where a failing call writes its message. A plain value type: callers put one on the
 * stack and pass its address; NULL means "no message wanted". */
typedef struct {
    stm_err code;   /* the code last set, STM_OK when none */
    char msg[1024]; /* one line, no trailing newline */
} stm_error;

/* A short, static description of a code ("bad input"). Never NULL. */
const char *stm_strerror(stm_err code);

/* Sets err's code and message (printf-style) and returns code, so a failing path can
 * `return stm_error_set(err, STM_EINPUT, "%s: ...", path);`. err may be NULL. */
stm_err stm_error_set(stm_error *err, stm_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "prefix: " in front of the message already in err (for adding a file name to a
 * lower layer's message). Returns err's code. err may be NULL. */
stm_err stm_error_prefix(stm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds "; suffix" (printf-style) after the message already in err, keeping its code
 * (for saying what state a failure left things in). Returns err's code; err may be
 * NULL. A suffix that does not fit is cut. */
stm_err stm_error_append(stm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct sqlite3;

/* Sets err to STM_EDB with "PATH: WHAT: <SQLite's last message on db>" and returns
 * STM_EDB, for a failed SQLite call: `return stm_error_db(err, db, path, "reading
 * clocks");`. path (the database's file, for a user with several) may be NULL, and
 * then the message starts with WHAT, which is printf-style. Call it before anything
 * else runs on db, which would replace SQLite's message. err may be NULL. */
stm_err stm_error_db(stm_error *err, struct sqlite3 *db, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears err to STM_OK and an empty message. err may be NULL. */
void stm_error_clear(stm_error *err);

#endif
