/* report_dot.c - the report as a Graphviz digraph (report.h, stm_report_dot): the mesh's
 * lineage tree, every version known once, and a box for this node and each peer. */
#include "report.h"
#include "report_internal.h"
#include "base/buf.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- DOT ---- */

/* Appends s inside a DOT double-quoted string. Schema set names and endpoints come from
 * peers, so nothing may end the string early or smuggle in label escapes: quotes and
 * backslashes are escaped (Graphviz turns \\ back into one backslash in labels), line
 * breaks become \n and other control characters spaces. Other bytes pass through:
 * Graphviz reads UTF-8. */
static void s_dot_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            stm_buf_putc(b, '\\');
            stm_buf_putc(b, (char)ch);
        } else if (ch == '\n') {
            stm_buf_puts(b, "\\n");
        } else if (ch < 0x20 || ch == 0x7f) {
            stm_buf_putc(b, ' ');
        } else {
            stm_buf_putc(b, (char)ch);
        }
    }
}

static void s_dot_quoted(buf_t *b, const char *s)
{
    stm_buf_putc(b, '"');
    s_dot_escape(b, s);
    stm_buf_putc(b, '"');
}

/* A version's graph node is named by its id alone: the same id is the same version in
 * every lineage (the id hashes the whole history before it). */
static void s_dot_version_name(buf_t *b, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    stm_buf_printf(b, "\"v:%s\"", hex);
}

/* Draws the versions of l that no lineage before it (earlier[0..nearlier)) has drawn.
 * Being hash chains, two lineages share exactly a common prefix (relation.h), so what
 * is already drawn of l is its longest common prefix with any of them, and every
 * version after that is new to the graph. */
static void s_dot_lineage(buf_t *b, const lineage_t *l, const lineage_t *const *earlier,
                          size_t nearlier)
{
    size_t drawn = 0;
    for (size_t k = 0; k < nearlier; k++) {
        size_t common = 0;
        stm_relation_of_lineages(earlier[k], l, &common);
        if (common > drawn)
            drawn = common;
    }
    for (size_t i = drawn; i < stm_lineage_count(l); i++) {
        const lineage_version *v = stm_lineage_version_at(l, i);
        char hex[STM_ID_HEX_LEN + 1];
        stm_id_to_hex(&v->id, hex);
        stm_buf_puts(b, "  ");
        s_dot_version_name(b, &v->id);
        stm_buf_printf(b, " [label=\"v%d %.12s\", tooltip=\"%s\"];\n", v->number, hex, hex);
        if (i > 0) {
            stm_buf_puts(b, "  ");
            s_dot_version_name(b, &stm_lineage_version_at(l, i - 1)->id);
            stm_buf_puts(b, " -> ");
            s_dot_version_name(b, &v->id);
            stm_buf_puts(b, ";\n");
        }
    }
}

/* A box for a node, and the line that joins it to its head version (none when its
 * lineage is empty or unknown). */
static void s_dot_box(buf_t *b, const char *name, const char *label, const char *style,
                      const lineage_t *l)
{
    stm_buf_puts(b, "  ");
    s_dot_quoted(b, name);
    stm_buf_puts(b, " [shape=box, style=");
    s_dot_quoted(b, style);
    stm_buf_puts(b, ", label=");
    s_dot_quoted(b, label);
    stm_buf_puts(b, "];\n");
    const lineage_version *head = l ? stm_lineage_head(l) : NULL;
    if (head) {
        stm_buf_puts(b, "  ");
        s_dot_quoted(b, name);
        stm_buf_puts(b, " -> ");
        s_dot_version_name(b, &head->id);
        stm_buf_puts(b, " [style=dotted, arrowhead=none];\n");
    }
}

char *stm_report_dot(const report_node *r)
{
    buf_t b = BUF_INIT;
    stm_buf_puts(&b, "digraph \"stemma\" {\n"
                     "  rankdir=LR;\n"
                     "  node [shape=ellipse, fontname=\"Helvetica\"];\n");
    const lineage_t **drawn = stm_calloc(r->npeers + 1, sizeof *drawn);
    size_t ndrawn = 0;
    s_dot_lineage(&b, r->lineage, drawn, ndrawn);
    drawn[ndrawn++] = r->lineage;
    for (size_t i = 0; i < r->npeers; i++) {
        if (!r->peers[i].lineage)
            continue;
        s_dot_lineage(&b, r->peers[i].lineage, drawn, ndrawn);
        drawn[ndrawn++] = r->peers[i].lineage;
    }
    free(drawn);

    buf_t name = BUF_INIT, label = BUF_INIT;
    char z85[41], sid[STM_ID_SHORT_LEN + 1];
    stm_report_z85(&r->id, z85);
    stm_report_short(&r->id, true, sid);
    stm_buf_printf(&name, "node:%s", z85);
    stm_buf_printf(&label, "this node %s%s%s\n%s\n%s v%d", sid, r->name ? " " : "",
                   r->name ? r->name : "", r->endpoint, stm_lineage_name(r->lineage), r->version);
    s_dot_box(&b, stm_buf_str(&name), stm_buf_str(&label), "bold", r->lineage);
    for (size_t i = 0; i < r->npeers; i++) {
        const report_peer *p = &r->peers[i];
        const comparison_t *c = stm_report_cmp(p);
        stm_buf_reset(&name);
        stm_buf_reset(&label);
        if (p->id_known) {
            stm_report_z85(&p->id, z85);
            stm_buf_printf(&name, "peer:%s", z85);
        } else {
            stm_buf_printf(&name, "peer#%zu", i + 1); /* unknown ids cannot clash with Z85 */
        }
        stm_report_short(&p->id, p->id_known, sid);
        stm_buf_printf(&label, "peer %s%s%s\n%s", sid, p->name ? " " : "", p->name ? p->name : "",
                       p->endpoint);
        if (c)
            stm_buf_printf(&label, "\n%s v%d\n%s, %s, sync %s", p->schema_set ? p->schema_set : "?",
                           c->remote_version, stm_report_state_name(p->state),
                           stm_relation_name(c->relation), stm_report_sync(p));
        else
            stm_buf_printf(&label, "\n%s", stm_report_state_name(p->state));
        s_dot_box(&b, stm_buf_str(&name), stm_buf_str(&label),
                  p->state == REPORT_REFUSED ? "dashed" : "solid", p->lineage);
    }
    stm_buf_free(&name);
    stm_buf_free(&label);
    stm_buf_puts(&b, "}\n");
    return stm_buf_detach(&b);
}
