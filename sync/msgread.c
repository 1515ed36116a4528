#include "msgread.h"

#include <string.h>

void stm_msgread_init(msgread_t *r, const void *data, size_t len)
{
    r->p = data;
    r->end = r->p + len;
}

size_t stm_msgread_left(const msgread_t *r)
{
    return (size_t)(r->end - r->p);
}

static uint64_t s_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

msg_type stm_msgread_peek(const msgread_t *r)
{
    if (r->p >= r->end)
        return MSG_INVALID;
    unsigned char c = *r->p;
    if (c <= 0x7f || c >= 0xe0)
        return MSG_INT;
    if (c <= 0x8f)
        return MSG_MAP;
    if (c <= 0x9f)
        return MSG_ARRAY;
    if (c <= 0xbf)
        return MSG_STR;
    switch (c) {
    case 0xc0:
        return MSG_NIL;
    case 0xc2:
    case 0xc3:
        return MSG_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return MSG_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return MSG_EXT;
    case 0xca:
    case 0xcb:
        return MSG_FLOAT;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return MSG_INT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return MSG_STR;
    case 0xdc:
    case 0xdd:
        return MSG_ARRAY;
    case 0xde:
    case 0xdf:
        return MSG_MAP;
    default:
        return MSG_INVALID; /* 0xc1 is never used */
    }
}

bool stm_msgread_nil(msgread_t *r)
{
    if (r->p >= r->end || *r->p != 0xc0)
        return false;
    r->p++;
    return true;
}

bool stm_msgread_bool(msgread_t *r, bool *v)
{
    if (r->p >= r->end || (*r->p != 0xc2 && *r->p != 0xc3))
        return false;
    *v = *r->p == 0xc3;
    r->p++;
    return true;
}

bool stm_msgread_int(msgread_t *r, int64_t *v)
{
    if (r->p >= r->end)
        return false;
    unsigned char c = *r->p;
    size_t left = stm_msgread_left(r);
    if (c <= 0x7f) {
        *v = c;
        r->p++;
        return true;
    }
    if (c >= 0xe0) {
        *v = (int8_t)c;
        r->p++;
        return true;
    }
    int n;
    bool is_signed;
    switch (c) {
    case 0xcc: n = 1, is_signed = false; break;
    case 0xcd: n = 2, is_signed = false; break;
    case 0xce: n = 4, is_signed = false; break;
    case 0xcf: n = 8, is_signed = false; break;
    case 0xd0: n = 1, is_signed = true; break;
    case 0xd1: n = 2, is_signed = true; break;
    case 0xd2: n = 4, is_signed = true; break;
    case 0xd3: n = 8, is_signed = true; break;
    default: return false;
    }
    if (left < (size_t)n + 1)
        return false;
    uint64_t u = s_be(r->p + 1, n);
    if (is_signed) {
        /* Sign-extend from n bytes. */
        int shift = 64 - 8 * n;
        *v = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return false;
        *v = (int64_t)u;
    }
    r->p += n + 1;
    return true;
}

bool stm_msgread_uint(msgread_t *r, uint64_t *v)
{
    msgread_t save = *r;
    int64_t i;
    if (!stm_msgread_int(r, &i) || i < 0) {
        *r = save;
        return false;
    }
    *v = (uint64_t)i;
    return true;
}

bool stm_msgread_double(msgread_t *r, double *v)
{
    size_t left = stm_msgread_left(r);
    if (left >= 5 && *r->p == 0xca) {
        uint32_t bits = (uint32_t)s_be(r->p + 1, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        *v = f;
        r->p += 5;
        return true;
    }
    if (left >= 9 && *r->p == 0xcb) {
        uint64_t bits = s_be(r->p + 1, 8);
        memcpy(v, &bits, sizeof *v);
        r->p += 9;
        return true;
    }
    return false;
}

/* Reads a length-prefixed body: header of hlen bytes holding a big-endian length in
 * its last lbytes (or the length given), then the body. */
static bool s_body(msgread_t *r, size_t hlen, uint64_t len, const void **data, uint32_t *out_len)
{
    if (stm_msgread_left(r) < hlen || stm_msgread_left(r) - hlen < len)
        return false;
    *data = r->p + hlen;
    *out_len = (uint32_t)len;
    r->p += hlen + len;
    return true;
}

bool stm_msgread_str(msgread_t *r, const char **data, uint32_t *len)
{
    if (r->p >= r->end)
        return false;
    unsigned char c = *r->p;
    size_t left = stm_msgread_left(r);
    const void *d;
    bool ok;
    if (c >= 0xa0 && c <= 0xbf)
        ok = s_body(r, 1, c & 0x1f, &d, len);
    else if (c == 0xd9 && left >= 2)
        ok = s_body(r, 2, s_be(r->p + 1, 1), &d, len);
    else if (c == 0xda && left >= 3)
        ok = s_body(r, 3, s_be(r->p + 1, 2), &d, len);
    else if (c == 0xdb && left >= 5)
        ok = s_body(r, 5, s_be(r->p + 1, 4), &d, len);
    else
        return false;
    if (ok)
        *data = d;
    return ok;
}

bool stm_msgread_bin(msgread_t *r, const void **data, uint32_t *len)
{
    if (r->p >= r->end)
        return false;
    unsigned char c = *r->p;
    size_t left = stm_msgread_left(r);
    if (c == 0xc4 && left >= 2)
        return s_body(r, 2, s_be(r->p + 1, 1), data, len);
    if (c == 0xc5 && left >= 3)
        return s_body(r, 3, s_be(r->p + 1, 2), data, len);
    if (c == 0xc6 && left >= 5)
        return s_body(r, 5, s_be(r->p + 1, 4), data, len);
    return false;
}

/* An array or map header: fix form in [fix_lo, fix_hi], then 16- and 32-bit forms. */
static bool s_container(msgread_t *r, unsigned char fix_lo, unsigned char fix_hi,
                        unsigned char c16, unsigned char c32, uint32_t per_element,
                        uint32_t *count)
{
    if (r->p >= r->end)
        return false;
    unsigned char c = *r->p;
    size_t left = stm_msgread_left(r), hlen;
    uint64_t n;
    if (c >= fix_lo && c <= fix_hi)
        n = c & 0x0f, hlen = 1;
    else if (c == c16 && left >= 3)
        n = s_be(r->p + 1, 2), hlen = 3;
    else if (c == c32 && left >= 5)
        n = s_be(r->p + 1, 4), hlen = 5;
    else
        return false;
    /* Each element takes at least one byte (a map entry two): a count the buffer
     * cannot hold is a lie, refused before anyone allocates for it. */
    if (n * per_element > left - hlen)
        return false;
    *count = (uint32_t)n;
    r->p += hlen;
    return true;
}

bool stm_msgread_array(msgread_t *r, uint32_t *count)
{
    return s_container(r, 0x90, 0x9f, 0xdc, 0xdd, 1, count);
}

bool stm_msgread_map(msgread_t *r, uint32_t *count)
{
    return s_container(r, 0x80, 0x8f, 0xde, 0xdf, 2, count);
}

/* depth: how many arrays and maps enclose the value. */
static bool s_skip(msgread_t *r, int depth)
{
    const void *d;
    uint32_t n;
    int64_t i;
    double f;
    bool b;
    switch (stm_msgread_peek(r)) {
    case MSG_NIL:
        return stm_msgread_nil(r);
    case MSG_BOOL:
        return stm_msgread_bool(r, &b);
    case MSG_INT:
        if (stm_msgread_int(r, &i))
            return true;
        /* a uint64 above INT64_MAX is still well-formed */
        if (*r->p == 0xcf && stm_msgread_left(r) >= 9) {
            r->p += 9;
            return true;
        }
        return false;
    case MSG_FLOAT:
        return stm_msgread_double(r, &f);
    case MSG_STR:
        return stm_msgread_str(r, (const char **)&d, &n);
    case MSG_BIN:
        return stm_msgread_bin(r, &d, &n);
    case MSG_ARRAY:
    case MSG_MAP: {
        /* The limit counts containers, so it is the same whatever the innermost holds. */
        if (depth >= MSGREAD_MAX_DEPTH)
            return false;
        bool is_map = stm_msgread_peek(r) == MSG_MAP;
        if (!(is_map ? stm_msgread_map(r, &n) : stm_msgread_array(r, &n)))
            return false;
        uint64_t items = is_map ? 2ull * n : n;
        for (uint64_t k = 0; k < items; k++)
            if (!s_skip(r, depth + 1))
                return false;
        return true;
    }
    case MSG_EXT: {
        static const struct {
            unsigned char code;
            int hlen;
            int fixed;
        } ext[] = {{0xd4, 2, 1}, {0xd5, 2, 2}, {0xd6, 2, 4}, {0xd7, 2, 8}, {0xd8, 2, 16},
                   {0xc7, 3, -1}, {0xc8, 4, -2}, {0xc9, 6, -4}};
        for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++) {
            if (*r->p != ext[k].code)
                continue;
            uint64_t len = ext[k].fixed > 0 ? (uint64_t)ext[k].fixed : 0;
            if (ext[k].fixed < 0) {
                if (stm_msgread_left(r) < (size_t)ext[k].hlen)
                    return false;
                len = s_be(r->p + 1, -ext[k].fixed);
            }
            return s_body(r, (size_t)ext[k].hlen, len, &d, &n);
        }
        return false;
    }
    case MSG_INVALID:
        return false;
    }
    return false;
}

bool stm_msgread_skip(msgread_t *r)
{
    msgread_t save = *r;
    if (s_skip(r, 0))
        return true;
    *r = save;
    return false;
}
