/* genman.c - writes stemma's manual pages at build time, from what they describe, so
 * that they cannot disagree with it:
 *
 *   genman cli STEMMA VERSION   stemma(1): `STEMMA --help` and each command's --help
 *   genman settings VERSION     stemma-node.toml(5): the table of settings (node/settings.c)
 *
 * The page goes to stdout. Not installed: CMake runs it (man/man.cmake). */
#include "base/buf.h"
#include "node/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything `STEMMA ARGS` prints on stdout, or NULL when it fails. */
static char *s_run(const char *stemma, const char *args)
{
    buf_t cmd = BUF_INIT, out = BUF_INIT;
    stm_buf_printf(&cmd, "'%s' %s", stemma, args);
    FILE *p = popen(stm_buf_str(&cmd), "r");
    stm_buf_free(&cmd);
    if (!p)
        return NULL;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        stm_buf_append(&out, chunk, n);
    if (pclose(p) != 0) {
        stm_buf_free(&out);
        return NULL;
    }
    return stm_buf_detach(&out);
}

/* text, line by line, as preformatted roff. */
static void s_put_verbatim(buf_t *b, const char *text)
{
    stm_buf_puts(b, ".nf\n");
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *one = strndup(line, len);
        stm_buf_put_roff(b, one);
        stm_buf_putc(b, '\n');
        free(one);
        line += len + (nl ? 1 : 0);
    }
    stm_buf_puts(b, ".fi\n");
}

static int s_cli(const char *stemma, const char *version)
{
    char *usage = s_run(stemma, "--help");
    if (!usage) {
        fprintf(stderr, "genman: '%s --help' failed\n", stemma);
        return 1;
    }
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, ".TH STEMMA 1 \"\" \"stemma %s\" \"User Commands\"\n", version);
    stm_buf_puts(&b, ".SH NAME\nstemma \\- schema\\-lineage sync for SQLite databases on many "
                     "devices\n.SH SYNOPSIS\n.B stemma\n.I COMMAND\n[\\fIOPTIONS\\fR]\n"
                     ".SH DESCRIPTION\n");
    s_put_verbatim(&b, usage);
    stm_buf_puts(&b, ".SH COMMANDS\n");
    /* The commands are the lines "  NAME  summary" after "commands:". */
    const char *list = strstr(usage, "commands:\n");
    int rc = list ? 0 : 1;
    for (const char *line = list ? list + 10 : ""; rc == 0 && line[0] == ' ';) {
        char name[32];
        if (sscanf(line, " %31s", name) != 1)
            break;
        char args[64];
        snprintf(args, sizeof args, "%s --help", name);
        char *help = s_run(stemma, args);
        if (!help) {
            fprintf(stderr, "genman: '%s %s' failed\n", stemma, args);
            rc = 1;
            break;
        }
        stm_buf_printf(&b, ".SS stemma %s\n", name);
        s_put_verbatim(&b, help);
        free(help);
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : "";
    }
    stm_buf_puts(&b, ".SH FILES\n.TP\n.I NODE_DIR/node.toml\nthe node's settings: "
                     "stemma\\-node.toml(5)\n.TP\n.I NODE_DIR/node.key, NODE_DIR/node.pub\n"
                     "its CURVE key pair\n.TP\n.I NODE_DIR/known_peers\nkeys trusted on first "
                     "use or by stemma trust add\n.SH SEE ALSO\nstemma\\-node.toml(5), "
                     "sqlite3(1); the user guide, docs/user\\-guide.md in the source\n");
    if (rc == 0)
        fputs(stm_buf_str(&b), stdout);
    stm_buf_free(&b);
    free(usage);
    return rc;
}

static int s_settings(const char *version)
{
    char *body = stm_config_doc_man();
    printf(".TH STEMMA-NODE.TOML 5 \"\" \"stemma %s\" \"File Formats\"\n"
           ".SH NAME\nstemma\\-node.toml \\- the settings of a stemma node\n"
           ".SH DESCRIPTION\n"
           "A node's directory (stemma init \\-\\-dir NODE_DIR) holds node.toml, a TOML file "
           "whose sections and settings follow. stemma init writes it with every setting "
           "commented; stemma node reads it at start, and again on SIGHUP (trusted keys and "
           "peers change at once; other settings changed are logged as needing a restart). "
           "A name it does not know is refused, with the one it most likely meant. Relative "
           "paths are relative to NODE_DIR.\n"
           ".SH SETTINGS\n%s"
           ".SH SEE ALSO\nstemma(1)\n",
           version, body);
    free(body);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "cli") == 0)
        return s_cli(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "settings") == 0)
        return s_settings(argv[2]);
    fprintf(stderr, "usage: genman cli STEMMA VERSION | genman settings VERSION\n");
    return 2;
}
