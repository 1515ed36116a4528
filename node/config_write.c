/* config_write.c - node.toml written from the table of settings (config.h):
 * stm_config_save writes each row under a comment made from its doc, bounds and
 * default; stm_config_doc_markdown writes the user guide's tables from the same words.
 * Writing builds the file line by line, so each setting can have its comment above it,
 * and lets toml/'s emitter write every value, so strings are escaped as TOML wants. */
#include "config.h"
#include "settings.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/safefile.h"
#include "toml/toml.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The doc of a row or section as a sentence: first letter capitalised, a full stop. */
static void s_put_sentence(buf_t *b, const char *doc)
{
    stm_buf_putc(b, (char)toupper((unsigned char)doc[0]));
    stm_buf_printf(b, "%s.", doc + 1);
}

/* Appends text as "# " comment lines of at most 80 columns, broken at spaces. */
static void s_put_comment(buf_t *b, const char *text)
{
    size_t col = 0;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > 0 && col + 1 + word > 80) {
            stm_buf_putc(b, '\n');
            col = 0;
        }
        if (col == 0) {
            stm_buf_putc(b, '#');
            col = 1;
        }
        stm_buf_printf(b, " %.*s", (int)word, text);
        col += 1 + word;
        text += word;
        text += strspn(text, " ");
    }
    if (col > 0)
        stm_buf_putc(b, '\n');
}

/* Appends v (taken) as TOML, written by toml/'s emitter: "key = value\n". */
static void s_put(buf_t *b, const char *key, toml_value *v)
{
    toml_value *t = stm_toml_new_table();
    stm_toml_table_set(t, key, v);
    char *line = stm_toml_emit(t, NULL);
    stm_buf_puts(b, line);
    free(line);
    stm_toml_destroy(&t);
}

/* One string as a TOML value, no key, no newline. */
static void s_put_literal(buf_t *b, const char *s)
{
    toml_value *t = stm_toml_new_table();
    stm_toml_table_set(t, "v", stm_toml_new_string(s, strlen(s)));
    char *line = stm_toml_emit(t, NULL);
    /* "v = VALUE\n" */
    size_t n = strlen(line);
    stm_buf_append(b, line + 4, n - 5);
    free(line);
    stm_toml_destroy(&t);
}

/* A list of strings (taken), one per line, so that a long list stays readable and
 * diffs well. */
static void s_put_list(buf_t *b, const char *key, char **items, size_t n)
{
    if (n == 0) {
        stm_buf_printf(b, "%s = []\n", key);
        return;
    }
    stm_buf_printf(b, "%s = [\n", key);
    for (size_t i = 0; i < n; i++) {
        stm_buf_puts(b, "    ");
        s_put_literal(b, items[i]);
        stm_buf_puts(b, ",\n");
        free(items[i]);
    }
    stm_buf_puts(b, "]\n");
}

/* Row s's value in cfg as a "key = value" line (or lines, for a list). */
static void s_put_value(buf_t *b, const node_config *cfg, const settings_row *s)
{
    switch (s->type) {
    case SETTINGS_PATH:
    case SETTINGS_ENDPOINT:
    case SETTINGS_BIND:
    case SETTINGS_NAME:
    case SETTINGS_DIAL:
    case SETTINGS_IPV4:
    case SETTINGS_LAYOUT: {
        const char *str = *(char **)stm_settings_field(cfg, s, sizeof(char *));
        s_put(b, s->key, stm_toml_new_string(str ? str : "", str ? strlen(str) : 0));
        break;
    }
    case SETTINGS_BOOL:
        s_put(b, s->key, stm_toml_new_bool(*(bool *)stm_settings_field(cfg, s, sizeof(bool))));
        break;
    case SETTINGS_INT:
        s_put(b, s->key, stm_toml_new_integer(*(int *)stm_settings_field(cfg, s, sizeof(int))));
        break;
    case SETTINGS_WORD: {
        int m = *(int *)stm_settings_field(cfg, s, sizeof(int));
        const char *word = m >= 0 && (size_t)m < s->nwords ? s->words[m] : s->words[s->value];
        s_put(b, s->key, stm_toml_new_string(word, strlen(word)));
        break;
    }
    case SETTINGS_PEERS:
    case SETTINGS_KEYS: {
        size_t n = *stm_settings_length(cfg, s);
        char **items = stm_calloc(n + 1, sizeof *items);
        for (size_t i = 0; i < n; i++) {
            if (s->type == SETTINGS_PEERS) {
                items[i] = stm_config_peer_format(
                    &(*(config_peer **)stm_settings_field(cfg, s, sizeof(config_peer *)))[i]);
            } else {
                items[i] = stm_malloc(KEYS_Z85_LEN + 1);
                stm_keys_to_z85(&(*(stm_id **)stm_settings_field(cfg, s, sizeof(stm_id *)))[i],
                                items[i]);
            }
        }
        s_put_list(b, s->key, items, n);
        free(items);
        break;
    }
    }
}

static const char *s_header =
    "# node.toml - the settings of a stemma node, written by 'stemma init'.\n"
    "#\n"
    "# The node reads this file when it starts and never writes it. A setting left out\n"
    "# takes the default its comment gives; a setting or section stemma does not know is\n"
    "# refused, with its line. Keys are CURVE public keys, written in Z85 (40 characters)\n"
    "# or hex (64 digits). docs/user-guide.md, \"Setting up a node\", tells more.\n";

stm_err stm_config_save(const node_config *cfg, stm_error *err)
{
    buf_t b = BUF_INIT, words = BUF_INIT;
    stm_buf_puts(&b, s_header);
    for (size_t i = 0; i < stm_settings_nsections; i++) {
        stm_buf_reset(&words);
        s_put_sentence(&words, stm_settings_sections[i].doc);
        stm_buf_putc(&b, '\n');
        s_put_comment(&b, stm_buf_str(&words));
        stm_buf_printf(&b, "[%s]\n", stm_settings_sections[i].name);
        for (size_t j = 0; j < stm_settings_nrows; j++) {
            const settings_row *s = &stm_settings_rows[j];
            if (strcmp(s->section, stm_settings_sections[i].name) != 0)
                continue;
            /* "Doc. Type; default X." */
            stm_buf_reset(&words);
            stm_settings_put_doc(&words, s);
            buf_t doc = BUF_INIT;
            s_put_sentence(&doc, stm_buf_str(&words));
            stm_buf_reset(&words);
            stm_settings_put_type(&words, s, false);
            stm_buf_printf(&doc, " %c%s; ", toupper((unsigned char)stm_buf_str(&words)[0]),
                           stm_buf_str(&words) + 1);
            stm_buf_reset(&words);
            stm_settings_put_default(&words, s);
            stm_buf_printf(&doc, words.len ? "default %s." : "required.", stm_buf_str(&words));
            s_put_comment(&b, stm_buf_str(&doc));
            stm_buf_free(&doc);
            s_put_value(&b, cfg, s);
        }
    }
    char *path = stm_config_path(cfg->dir, CONFIG_FILE);
    stm_err rc = stm_safefile_write(path, b.data, b.len, 0644, false, err);
    free(path);
    stm_buf_free(&words);
    stm_buf_free(&b);
    return rc;
}

char *stm_config_values_text(const node_config *cfg)
{
    buf_t b = BUF_INIT;
    for (size_t j = 0; j < stm_settings_nrows; j++) {
        const settings_row *s = &stm_settings_rows[j];
        if (s->type == SETTINGS_PEERS || s->type == SETTINGS_KEYS)
            continue;
        stm_buf_printf(&b, "%s.", s->section);
        s_put_value(&b, cfg, s);
    }
    return stm_buf_detach(&b);
}

/* ------------------------------------------------------------------ the user guide */

char *stm_config_doc_markdown(void)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < stm_settings_nsections; i++) {
        stm_buf_printf(&b, "%s`[%s]` — %s.", i ? "\n" : "", stm_settings_sections[i].name,
                       stm_settings_sections[i].doc);
        stm_buf_puts(&b, "\n\n| setting | type | default | what it is |\n|---|---|---|---|\n");
        for (size_t j = 0; j < stm_settings_nrows; j++) {
            const settings_row *s = &stm_settings_rows[j];
            if (strcmp(s->section, stm_settings_sections[i].name) != 0)
                continue;
            stm_buf_printf(&b, "| `%s` | ", s->key);
            stm_settings_put_type(&b, s, true);
            buf_t def = BUF_INIT;
            stm_settings_put_default(&def, s);
            stm_buf_printf(&b, def.len ? " | `%s` | " : " | (required)%s | ", stm_buf_str(&def));
            stm_buf_free(&def);
            stm_settings_put_doc(&b, s);
            stm_buf_puts(&b, " |\n");
        }
    }
    return stm_buf_detach(&b);
}

/* ------------------------------------------------------------------ the manual page */

char *stm_config_doc_man(void)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < stm_settings_nsections; i++) {
        stm_buf_printf(&b, ".SS [%s]\n", stm_settings_sections[i].name);
        stm_buf_put_roff(&b, stm_settings_sections[i].doc);
        stm_buf_puts(&b, ".\n");
        for (size_t j = 0; j < stm_settings_nrows; j++) {
            const settings_row *s = &stm_settings_rows[j];
            if (strcmp(s->section, stm_settings_sections[i].name) != 0)
                continue;
            buf_t line = BUF_INIT;
            stm_settings_put_type(&line, s, false);
            stm_buf_printf(&b, ".TP\n.B %s\n(", s->key);
            stm_buf_put_roff(&b, stm_buf_str(&line));
            stm_buf_reset(&line);
            stm_settings_put_default(&line, s);
            stm_buf_puts(&b, line.len ? "; default " : "; required");
            stm_buf_put_roff(&b, stm_buf_str(&line));
            stm_buf_puts(&b, ")\n.br\n");
            stm_buf_reset(&line);
            stm_settings_put_doc(&line, s);
            stm_buf_put_roff(&b, stm_buf_str(&line));
            stm_buf_puts(&b, ".\n");
            stm_buf_free(&line);
        }
    }
    return stm_buf_detach(&b);
}
