/* json_min.h - a small JSON reader for the tests only: enough of RFC 8259 to read the
 * toml-test expectations (objects, arrays, strings with every escape including surrogate
 * pairs, numbers kept as text, true/false/null). Not for production input. */
#ifndef STM_JSON_MIN_H
#define STM_JSON_MIN_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;     /* which fields below are in use */
    char *str;          /* JSON_STRING: decoded UTF-8, may hold NULs; JSON_NUMBER: its text */
    size_t len;         /* bytes in str */
    bool b;             /* JSON_BOOL */
    size_t count;       /* JSON_ARRAY, JSON_OBJECT: number of members */
    char **keys;        /* JSON_OBJECT: decoded keys, may hold NULs */
    size_t *keylens;    /* JSON_OBJECT: bytes in each key */
    json_value **items; /* JSON_ARRAY: elements; JSON_OBJECT: values */
};

/* Parses len bytes; returns a tree the caller frees with json_free, or NULL with a
 * message in err (errlen bytes). */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
/* Frees v and everything below it; safe on NULL. */
void json_free(json_value *v);
/* The value under the NUL-free key in object obj, NULL if absent; lent. */
const json_value *json_get(const json_value *obj, const char *key);

#endif
