/* toml_scalar.c - the TOML parser's numbers, dates and times. At a digit, a sign, 'i' or
 * 'n', stm_tp_number reads an integer (decimal, or 0x, 0o, 0b; checked to fit in 64 bits), a
 * float (computed exactly when one correctly rounded operation can, by strtod in the C
 * library's decimal point otherwise), inf or nan, or, told apart by its first characters,
 * a local date, local time, local date-time or offset date-time with every field checked
 * against its range. The value goes in the document's arena; the caller records where it
 * started.
 *
 * A number is checked against the grammar in full (s_scan_digits) before any of it is
 * converted, so the conversions (s_fast_float, strtod, the 64-bit accumulation) only ever
 * see well-formed digits.
 */
#include "toml/toml.h"
#include "toml/toml_parser.h"

#include "base/buf.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ dates and times */

/* Reads exactly n digits at *q into *v, advancing *q; false (with *q at the offending
 * character) if they are not there. */
static bool s_fixed(const char **q, const char *end, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++, (*q)++) {
        if (*q >= end || !toml_isdigit(**q))
            return false;
        x = x * 10 + (**q - '0');
    }
    *v = x;
    return true;
}

/* HH:MM:SS[.fraction] at *q. */
static stm_err s_time(s_parser *p, const char **q, toml_datetime *dt)
{
    const char *f = *q;
    if (!s_fixed(q, p->end, 2, &dt->hour))
        return stm_tp_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->hour > 23)
        return stm_tp_fail(p, f, "hour %02d is out of range", dt->hour);
    if (*q >= p->end || **q != ':')
        return stm_tp_expected(p, *q, "':' in the time (HH:MM:SS)");
    f = ++*q;
    if (!s_fixed(q, p->end, 2, &dt->minute))
        return stm_tp_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->minute > 59)
        return stm_tp_fail(p, f, "minute %02d is out of range", dt->minute);
    if (*q >= p->end || **q != ':')
        return stm_tp_expected(p, *q, "':' in the time (HH:MM:SS)");
    f = ++*q;
    if (!s_fixed(q, p->end, 2, &dt->second))
        return stm_tp_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->second > 60)
        return stm_tp_fail(p, f, "second %02d is out of range", dt->second);
    if (*q < p->end && **q == '.') {
        ++*q;
        if (*q >= p->end || !toml_isdigit(**q))
            return stm_tp_expected(p, *q, "a digit after the decimal point");
        int ns = 0, n = 0;
        for (; *q < p->end && toml_isdigit(**q); ++*q)
            if (n < 9) {
                ns = ns * 10 + (**q - '0');
                n++;
            }
        for (; n < 9; n++)
            ns *= 10;
        dt->nanosecond = ns;
    }
    return STM_OK;
}

/* A date, date-time or time (time_only: starts HH:). */
static stm_err s_datetime(s_parser *p, bool time_only, toml_value **out)
{
    const char *q = p->cur, *f = q;
    toml_datetime dt = {0};
    toml_type type = TOML_TIME_LOCAL;
    stm_err rc;
    if (!time_only) {
        if (!s_fixed(&q, p->end, 4, &dt.year))
            return stm_tp_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (q >= p->end || *q != '-')
            return stm_tp_expected(p, q, "'-' in the date (YYYY-MM-DD)");
        f = ++q;
        if (!s_fixed(&q, p->end, 2, &dt.month))
            return stm_tp_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (dt.month < 1 || dt.month > 12)
            return stm_tp_fail(p, f, "month %02d is out of range", dt.month);
        if (q >= p->end || *q != '-')
            return stm_tp_expected(p, q, "'-' in the date (YYYY-MM-DD)");
        f = ++q;
        if (!s_fixed(&q, p->end, 2, &dt.day))
            return stm_tp_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (dt.day < 1 || dt.day > stm_toml_days_in_month(dt.year, dt.month))
            return stm_tp_fail(p, f, "day %02d is out of range for %04d-%02d", dt.day, dt.year,
                               dt.month);
        type = TOML_DATE_LOCAL;
        if (q < p->end &&
            (*q == 'T' || *q == 't' || (*q == ' ' && q + 1 < p->end && toml_isdigit(q[1])))) {
            q++;
            type = TOML_DATETIME_LOCAL;
        }
    }
    if (type != TOML_DATE_LOCAL) {
        if ((rc = s_time(p, &q, &dt)))
            return rc;
        if (type == TOML_DATETIME_LOCAL && q < p->end && (*q == 'Z' || *q == 'z')) {
            q++;
            type = TOML_DATETIME;
        } else if (type == TOML_DATETIME_LOCAL && q < p->end && (*q == '+' || *q == '-')) {
            int sign = *q++ == '-' ? -1 : 1, h, m;
            f = q;
            if (!s_fixed(&q, p->end, 2, &h))
                return stm_tp_expected(p, q, "a digit in the time offset (+HH:MM)");
            if (h > 23)
                return stm_tp_fail(p, f, "offset hour %02d is out of range", h);
            if (q >= p->end || *q != ':')
                return stm_tp_expected(p, q, "':' in the time offset (+HH:MM)");
            f = ++q;
            if (!s_fixed(&q, p->end, 2, &m))
                return stm_tp_expected(p, q, "a digit in the time offset (+HH:MM)");
            if (m > 59)
                return stm_tp_fail(p, f, "offset minute %02d is out of range", m);
            dt.offset_minutes = sign * (h * 60 + m);
            type = TOML_DATETIME;
        }
    }
    p->cur = q;
    toml_value *v = tp_pnew(p, type);
    v->u.dt = dt;
    *out = v;
    return STM_OK;
}

/* ------------------------------------------------------------------ numbers */

/* Scans DIGIT *(DIGIT / "_" DIGIT) in base from q; returns the end, or NULL with *bad at
 * the offending character. */
static const char *s_scan_digits(const char *q, const char *e, int base, const char **bad)
{
    if (q >= e || !tp_isdigit_in(*q, base)) {
        *bad = q;
        return NULL;
    }
    for (q++; q < e;) {
        if (*q == '_') {
            if (q + 1 >= e || !tp_isdigit_in(q[1], base)) {
                *bad = q;
                return NULL;
            }
            q += 2;
        } else if (tp_isdigit_in(*q, base)) {
            q++;
        } else {
            break;
        }
    }
    return q;
}

/* The float in [s, e), already checked against the grammar, when it can be computed
 * exactly: a mantissa of at most 2^53 times or divided by a power of ten of at most
 * 10^22 (both exact doubles) is one correctly rounded operation. False otherwise. */
static bool s_fast_float(const char *s, const char *e, double *out)
{
#if FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    uint64_t w = 0;
    int digits = 0, scale = 0;
    bool frac = false;
    for (; s < e && *s != 'e' && *s != 'E'; s++) {
        if (*s == '_')
            continue;
        if (*s == '.') {
            frac = true;
            continue;
        }
        if (w == 0 && *s == '0') {
            if (frac)
                scale--;
            continue;
        }
        if (++digits > 19)
            return false;
        w = w * 10 + (uint64_t)(*s - '0');
        if (frac)
            scale--;
    }
    if (s < e) {
        bool eneg = *++s == '-';
        if (*s == '+' || *s == '-')
            s++;
        int x = 0;
        for (; s < e; s++)
            if (*s != '_' && (x = x * 10 + (*s - '0')) > 1000)
                return false;
        scale += eneg ? -x : x;
    }
    if (w == 0) {
        *out = neg ? -0.0 : 0.0;
        return true;
    }
    if (w > (1ull << 53) || scale < -22 || scale > 22)
        return false;
    double d = (double)w;
    if (scale < 0)
        d /= pow10[-scale];
    else if (scale > 0)
        d *= pow10[scale];
    *out = neg ? -d : d;
    return true;
#else
    (void)s, (void)e, (void)out;
    return false;
#endif
}

static bool s_isnumchar(char c)
{
    return toml_isbare(c) || c == '.' || c == '+';
}

static stm_err s_bad_number(s_parser *p, const char *at)
{
    char buf[32];
    if (at < p->end && *at == '_')
        return stm_tp_fail(p, at, "invalid number: '_' must sit between two digits");
    return stm_tp_fail(p, at, "invalid number: unexpected %s", stm_tp_what(p, at, buf, sizeof buf));
}

/* An integer, a float, or (by its shape) a date or time. */
stm_err stm_tp_number(s_parser *p, toml_value **out)
{
    const char *s = p->cur, *e = s, *q = s, *bad;
    size_t avail = (size_t)(p->end - s);
    if (avail >= 3 && toml_isdigit(s[0]) && toml_isdigit(s[1]) && s[2] == ':')
        return s_datetime(p, true, out);
    if (avail >= 5 && toml_isdigit(s[0]) && toml_isdigit(s[1]) && toml_isdigit(s[2]) &&
        toml_isdigit(s[3]) && s[4] == '-')
        return s_datetime(p, false, out);
    while (e < p->end && s_isnumchar(*e))
        e++;
    bool neg = false, sign = *q == '+' || *q == '-';
    if (sign)
        neg = *q++ == '-';
    if (e - q == 3 && (memcmp(q, "inf", 3) == 0 || memcmp(q, "nan", 3) == 0)) {
        toml_value *v = tp_pnew(p, TOML_FLOAT);
        v->u.f = q[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        p->cur = e;
        *out = v;
        return STM_OK;
    }
    if (q >= e || !toml_isdigit(*q)) {
        if (q < e && (*q == 'i' || *q == 'n'))
            return stm_tp_fail(p, q, "invalid value (did you mean inf or nan?)");
        return s_bad_number(p, q);
    }
    int base = 10;
    if (!sign && q[0] == '0' && e - q >= 2 && (q[1] == 'x' || q[1] == 'o' || q[1] == 'b')) {
        base = q[1] == 'x' ? 16 : q[1] == 'o' ? 8 : 2;
        q += 2;
    } else if (q[0] == '0' && e - q >= 2 && (toml_isdigit(q[1]) || q[1] == '_')) {
        return stm_tp_fail(p, q, "invalid number: leading zeros are not allowed");
    }
    const char *digits = q;
    if (!(q = s_scan_digits(q, e, base, &bad)))
        return s_bad_number(p, bad);
    bool is_float = false;
    if (base == 10 && q < e && *q == '.') {
        if (!(q = s_scan_digits(q + 1, e, 10, &bad)))
            return s_bad_number(p, bad);
        is_float = true;
    }
    if (base == 10 && q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (!(q = s_scan_digits(q, e, 10, &bad)))
            return s_bad_number(p, bad);
        is_float = true;
    }
    if (q != e)
        return s_bad_number(p, q);
    toml_value *v;
    double f;
    if (is_float && s_fast_float(s, e, &f)) {
        v = tp_pnew(p, TOML_FLOAT);
        v->u.f = f;
    } else if (is_float) {
        char small[64], *tmp = small;
        if ((size_t)(e - s) >= sizeof small) {
            stm_buf_reset(&p->sbuf);
            stm_buf_append(&p->sbuf, s, (size_t)(e - s));
            tmp = p->sbuf.data;
        }
        size_t n = 0;
        for (const char *c = s; c < e; c++)
            if (*c != '_')
                tmp[n++] = *c == '.' ? p->decimal_point : *c;
        tmp[n] = '\0';
        f = strtod(tmp, NULL);
        if (isinf(f))
            return stm_tp_fail(p, s, "float %.*s is out of range", (int)(e - s), s);
        v = tp_pnew(p, TOML_FLOAT);
        v->u.f = f;
    } else {
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
        uint64_t cutoff = limit / (unsigned)base, cutlim = limit % (unsigned)base;
        for (const char *c = digits; c < e; c++) {
            if (*c == '_')
                continue;
            unsigned d = (unsigned)tp_digit_value(*c);
            if (acc > cutoff || (acc == cutoff && d > cutlim))
                return stm_tp_fail(p, s, "integer %.*s does not fit in 64 bits", (int)(e - s), s);
            acc = acc * (unsigned)base + d;
        }
        v = tp_pnew(p, TOML_INTEGER);
        v->u.i = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    }
    p->cur = e;
    *out = v;
    return STM_OK;
}
