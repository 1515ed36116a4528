/* nodeutil.h - helpers the tests of node/'s files share: a known key pair, and node.toml
 * written around a few lines of a test's own and refused. */
#ifndef STM_NODEUTIL_H
#define STM_NODEUTIL_H

#include <stddef.h>

/* The documented key pair of zmq_curve(7)'s example server, in Z85. */
#define NU_CURVE_PUBLIC "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define NU_CURVE_SECRET "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

/* Writes dir/node.toml: the minimal valid one ([node] with db = "app.db" and
 * schemas = "schemas", three lines), then extra. */
void nu_write_config(const char *dir, const char *extra);

/* A node.toml that must be refused: after the three lines nu_write_config writes, line
 * 4 is the first of extra ("!" starts a whole document instead, for what must come
 * before [node]); the message must start with "DIR/node.toml" and then says, exactly. */
typedef struct {
    const char *extra, *says;
} nu_bad;

/* Writes each of the n in a scratch directory and fails the test unless stm_config_load
 * refuses it as it says. */
void nu_refuse_all(const nu_bad *bad, size_t n);

#endif
