#include "base/id.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(stm_hasher) >= sizeof(crypto_generichash_state),
               "stm_hasher must hold a crypto_generichash_state");

void stm_hasher_init(stm_hasher *h)
{
    crypto_generichash_init((crypto_generichash_state *)h->state, NULL, 0, STM_ID_BYTES);
}

void stm_hasher_update(stm_hasher *h, const void *data, size_t len)
{
    crypto_generichash_update((crypto_generichash_state *)h->state, data, len);
}

void stm_hasher_u32(stm_hasher *h, uint32_t v)
{
    unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v};
    stm_hasher_update(h, be, sizeof be);
}

void stm_hasher_u64(stm_hasher *h, uint64_t v)
{
    unsigned char be[8];
    for (int i = 7; i >= 0; i--) {
        be[i] = (unsigned char)v;
        v >>= 8;
    }
    stm_hasher_update(h, be, sizeof be);
}

void stm_hasher_str(stm_hasher *h, const char *s)
{
    if (!s) {
        stm_hasher_u32(h, 0xffffffffu);
        return;
    }
    size_t len = strlen(s);
    stm_hasher_u32(h, (uint32_t)len);
    stm_hasher_update(h, s, len);
}

void stm_hasher_final(stm_hasher *h, stm_id *out)
{
    crypto_generichash_final((crypto_generichash_state *)h->state, out->bytes, STM_ID_BYTES);
}

void stm_id_hash(const void *data, size_t len, stm_id *out)
{
    crypto_generichash(out->bytes, STM_ID_BYTES, data, len, NULL, 0);
}

void stm_id_to_hex(const stm_id *id, char out[STM_ID_HEX_LEN + 1])
{
    sodium_bin2hex(out, STM_ID_HEX_LEN + 1, id->bytes, STM_ID_BYTES);
}

void stm_id_short(const stm_id *id, char out[STM_ID_SHORT_LEN + 1])
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    memcpy(out, hex, STM_ID_SHORT_LEN);
    out[STM_ID_SHORT_LEN] = '\0';
}

bool stm_id_from_hex(const char *hex, stm_id *out)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen(hex) != STM_ID_HEX_LEN)
        return false;
    if (sodium_hex2bin(out->bytes, STM_ID_BYTES, hex, STM_ID_HEX_LEN, NULL, &bin_len, &end) != 0)
        return false;
    return bin_len == STM_ID_BYTES && end == hex + STM_ID_HEX_LEN;
}

bool stm_id_equal(const stm_id *a, const stm_id *b)
{
    return memcmp(a->bytes, b->bytes, STM_ID_BYTES) == 0;
}

bool stm_id_is_zero(const stm_id *id)
{
    return sodium_is_zero(id->bytes, STM_ID_BYTES);
}
