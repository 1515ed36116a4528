/* cmd_compare.c - stemma compare: how two schema histories relate, per database, per
 * table and per column, and what syncs between them under the default policy. */
#include "cli.h"
#include "commands.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "base/mem.h"
#include "lineage/relation.h"
#include "lineage/syncable.h"
#include "compare_parks.h"
#include "unsynced_text.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *s_compare_help =
    "usage: stemma compare LOCAL REMOTE [--layout NAME] [--remote-layout NAME]\n"
    "                      [--format text|json]\n"
    "\n"
    "Compares two schema histories and says how they relate: same, ancestor (LOCAL is\n"
    "older than REMOTE), descendant (LOCAL is newer), divergent (they parted; the\n"
    "common ancestor is named) or unrelated (no common ancestor). The same is said for\n"
    "each table (family), with its columns sorted into shared, local_only,\n"
    "remote_only and conflicting, and the text form says what will and will not sync\n"
    "under the default policy: where each table or column one side lacks is parked and\n"
    "what replays it (the version whose migration adds it), or that nothing does (a\n"
    "history dropped it; another branch's, parked for the policy), and the tables of\n"
    "each side stemma cannot sync, each with why (no primary key, a key of more than\n"
    "32 columns, a virtual table and the tables its module keeps).\n"
    "\n"
    "  LOCAL, REMOTE   each a schema directory or a file written by 'stemma export'\n"
    "  --layout NAME   how the directory LOCAL names its migrations: stemma, flyway,\n"
    "                  diesel, sqlx, dbmate, goose or golang-migrate (default: found\n"
    "                  from its files)\n"
    "  --remote-layout NAME\n"
    "                  ... the directory REMOTE\n"
    "  --format F      text (default) or json\n"
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 0 whatever the relation, 2 for bad usage or bad input, 1 otherwise.\n";

/* A growing list of "what (why)" phrases for the text summary. */
typedef struct {
    buf_t text;
    size_t count;
} s_phrases;

static void s_phrase(s_phrases *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_phrase(s_phrases *p, const char *fmt, ...)
{
    if (p->count++)
        stm_buf_puts(&p->text, ", ");
    va_list ap;
    va_start(ap, fmt);
    stm_buf_vprintf(&p->text, fmt, ap);
    va_end(ap);
}

static void s_join_names(buf_t *b, const char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        stm_buf_printf(b, "%s%s", i ? ", " : "", names[i]);
}

/* The "columns" cell of a family's row. */
static void s_family_cell(buf_t *b, const comparison_family *f)
{
    if (!f->local_live && !f->remote_live) {
        stm_buf_puts(b, "dropped on both sides");
        return;
    }
    if (f->renamed_table) {
        stm_buf_printf(b, "table renamed: %s %s", f->renamed_table, f->local_live ? "there" : "here");
        for (size_t k = 0; k < f->nrenamed; k++)
            stm_buf_printf(b, "%s%s here = %s there", k ? ", " : "; renamed: ", f->renamed[k].here,
                           f->renamed[k].there);
        return;
    }
    const char *sep = "";
    if (f->ncolumns[COLUMN_SHARED]) {
        stm_buf_printf(b, "%zu shared", f->ncolumns[COLUMN_SHARED]);
        sep = "; ";
    }
    static const struct {
        column_relation r;
        const char *label;
    } parts[] = {{COLUMN_LOCAL_ONLY, "only here: "},
                 {COLUMN_REMOTE_ONLY, "only there: "},
                 {COLUMN_CONFLICTING, "conflicting: "}};
    for (size_t k = 0; k < 3; k++) {
        if (!f->ncolumns[parts[k].r])
            continue;
        stm_buf_printf(b, "%s%s", sep, parts[k].label);
        s_join_names(b, f->columns[parts[k].r], f->ncolumns[parts[k].r]);
        sep = "; ";
    }
    if (f->nrenamed) {
        stm_buf_printf(b, "%srenamed: ", sep);
        for (size_t k = 0; k < f->nrenamed; k++)
            stm_buf_printf(b, "%s%s here = %s there", k ? ", " : "", f->renamed[k].here,
                           f->renamed[k].there);
    }
    if (f->local_live != f->remote_live)
        stm_buf_printf(b, " (table %s)", f->local_live ? "only here" : "only there");
}

/* The tables of each side's head that stemma cannot sync, each with why: the schema's
 * own reasons (lineage/syncable.h), since compare has no database to exclude any. */
typedef struct {
    syncable_table *local; /* in order of name */
    size_t nlocal;
    syncable_table *remote;
    size_t nremote;
    char **local_per_device; /* synced tables whose keys each device picks, by name */
    size_t nlocal_per_device;
    char **remote_per_device;
    size_t nremote_per_device;
} s_unsynced;

static void s_unsynced_read(s_unsynced *u, const lineage_t *local, const lineage_t *remote)
{
    int lv = (int)stm_lineage_count(local), rv = (int)stm_lineage_count(remote);
    u->nlocal = stm_syncable_unsynced(local, lv, NULL, 0, &u->local);
    u->nremote = stm_syncable_unsynced(remote, rv, NULL, 0, &u->remote);
    u->nlocal_per_device = stm_syncable_per_device(local, lv, NULL, 0, &u->local_per_device);
    u->nremote_per_device = stm_syncable_per_device(remote, rv, NULL, 0, &u->remote_per_device);
}

static void s_unsynced_free(s_unsynced *u)
{
    stm_syncable_tables_free(u->local, u->nlocal);
    stm_syncable_tables_free(u->remote, u->nremote);
    stm_syncable_names_free(u->local_per_device, u->nlocal_per_device);
    stm_syncable_names_free(u->remote_per_device, u->nremote_per_device);
}

/* The tables whose keys each device picks, on each side, and what stemma does with them. */
static void s_per_device_summary(buf_t *b, const s_unsynced *u)
{
    if (!u->nlocal_per_device && !u->nremote_per_device)
        return;
    stm_buf_puts(b, "  Keys chosen per device (" UNSYNCED_TEXT_PER_DEVICE "):\n");
    if (u->nlocal_per_device) {
        stm_buf_puts(b, "    here:  ");
        unsynced_text_names(b, u->local_per_device, u->nlocal_per_device);
        stm_buf_putc(b, '\n');
    }
    if (u->nremote_per_device) {
        stm_buf_puts(b, "    there: ");
        unsynced_text_names(b, u->remote_per_device, u->nremote_per_device);
        stm_buf_putc(b, '\n');
    }
}

/* True when f's table syncs on every side that has it. */
static bool s_syncs(const comparison_family *f, const s_unsynced *u)
{
    return !(f->local_live && stm_syncable_find(u->local, u->nlocal, f->name)) &&
           !(f->remote_live && stm_syncable_find(u->remote, u->nremote, f->name));
}

/* Collects, across the families that can sync, the shared tables, the renamed ones
 * and the columns of another type on each side. */
static void s_collect(const comparison_t *c, const s_unsynced *u, s_phrases *syncs,
                      s_phrases *conflicts, s_phrases *translated)
{
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        if (!s_syncs(f, u))
            continue;
        /* Renamed (lineage/lens.h): the operations are translated, not parked. */
        if (f->renamed_table && f->local_live)
            s_phrase(translated, "%s here = %s there", f->name, f->renamed_table);
        const char *there = f->renamed_table ? f->renamed_table : f->name;
        for (size_t k = 0; k < f->nrenamed; k++)
            s_phrase(translated, "%s.%s here = %s.%s there", f->name, f->renamed[k].here,
                     there, f->renamed[k].there);
        if (f->local_live && f->remote_live && f->ncolumns[COLUMN_SHARED] + f->nrenamed) {
            size_t total =
                f->ncolumns[0] + f->ncolumns[1] + f->ncolumns[2] + f->ncolumns[3] + f->nrenamed;
            size_t both = f->ncolumns[COLUMN_SHARED] + f->nrenamed;
            if (total == both)
                s_phrase(syncs, "%s (%zu columns)", f->name, total);
            else
                s_phrase(syncs, "%s (%zu of %zu columns)", f->name, both, total);
        }
        for (size_t k = 0; k < f->ncolumns[COLUMN_CONFLICTING] && !f->renamed_table; k++)
            s_phrase(conflicts, "%s.%s", f->name, f->columns[COLUMN_CONFLICTING][k]);
    }
}

/* The parked items of kind on one side (here or not) as phrases: "tasks.tags (v3)",
 * "comments (table, v4)", "users.old (dropped at v6)". */
static void s_parks_phrases(s_phrases *p, const parks_item *items, size_t n, parks_kind kind,
                            bool here)
{
    for (size_t i = 0; i < n; i++) {
        const parks_item *it = &items[i];
        if (it->kind != kind || it->here != here)
            continue;
        buf_t what = BUF_INIT;
        if (it->column)
            stm_buf_printf(&what, "%s.%s", it->table, it->column);
        else
            stm_buf_printf(&what, "%s (table", it->table);
        const char *open = it->column ? " (" : ", ";
        if (kind == PARKS_MISSING && it->version)
            stm_buf_printf(&what, "%sv%d)", open, it->version);
        else if (kind == PARKS_DROPPED && it->version)
            stm_buf_printf(&what, "%sdropped at v%d)", open, it->version);
        else if (!it->column)
            stm_buf_putc(&what, ')');
        s_phrase(p, "%s", stm_buf_str(&what));
        stm_buf_free(&what);
    }
}

/* "  LEAD\n    a, b, c\n" for the items of kind on one side, nothing when none. */
static void s_parks_block(buf_t *b, const char *lead, const parks_item *items, size_t n,
                          parks_kind kind, bool here)
{
    s_phrases p = {BUF_INIT, 0};
    s_parks_phrases(&p, items, n, kind, here);
    if (p.count)
        stm_buf_printf(b, "  %s\n    %s\n", lead, stm_buf_str(&p.text));
    stm_buf_free(&p.text);
}

/* True when both sides leave the same tables unsynced, for the same reasons. */
static bool s_unsynced_alike(const s_unsynced *u)
{
    if (u->nlocal != u->nremote)
        return false;
    for (size_t i = 0; i < u->nlocal; i++)
        if (strcmp(u->local[i].name, u->remote[i].name) != 0 ||
            u->local[i].reason != u->remote[i].reason)
            return false;
    return true;
}

/* Names the tables stemma cannot sync on each side, each with why. */
static void s_unsynced_summary(buf_t *b, const s_unsynced *u)
{
    if (u->nlocal && s_unsynced_alike(u)) {
        stm_buf_puts(b, "  Never synced, on either side:\n");
        unsynced_text_lines(b, "    ", u->local, u->nlocal);
        return;
    }
    if (u->nlocal) {
        stm_buf_puts(b, "  Never synced here:\n");
        unsynced_text_lines(b, "    ", u->local, u->nlocal);
    }
    if (u->nremote) {
        stm_buf_puts(b, "  Never synced there:\n");
        unsynced_text_lines(b, "    ", u->remote, u->nremote);
    }
}

static void s_compare_summary(buf_t *b, const comparison_t *c, const lineage_t *local,
                              const lineage_t *remote, const s_unsynced *u, bool followed)
{
    s_phrases syncs = {BUF_INIT, 0}, conflicts = {BUF_INIT, 0}, translated = {BUF_INIT, 0};
    s_collect(c, u, &syncs, &conflicts, &translated);
    parks_item *parks = NULL;
    size_t nparks =
        compare_parks(c, local, remote, u->local, u->nlocal, u->remote, u->nremote, &parks);
    /* Not "everything" when some table can never sync. */
    const char *all = u->nlocal || u->nremote ? "Every table stemma can sync" : "Everything";
    stm_buf_puts(b, "\nWhat syncs, under the default policy:\n");
    switch (c->relation) {
    case RELATION_SAME:
        stm_buf_printf(b, "  %s: both sides have the same schema history.\n", all);
        break;
    case RELATION_ANCESTOR:
    case RELATION_DESCENDANT: {
        bool local_older = c->relation == RELATION_ANCESTOR;
        stm_buf_printf(b, "  %s. %s is newer (v%d against v%d).\n", all,
                       local_older ? "The remote" : "This side",
                       local_older ? c->remote_version : c->stm_local_version,
                       local_older ? c->stm_local_version : c->remote_version);
        s_parks_block(b,
                      local_older ? "Parked here, then replayed when this side migrates to the "
                                    "version that adds it:"
                                  : "Parked on the remote, then replayed when it migrates to the "
                                    "version that adds it:",
                      parks, nparks, PARKS_MISSING, local_older);
        s_parks_block(b,
                      local_older ? "Parked on the remote, and no migration replays them (its "
                                    "history dropped them):"
                                  : "Parked here, and no migration replays them (this history "
                                    "dropped them):",
                      parks, nparks, PARKS_DROPPED, !local_older);
        /* A table or column dropped may be one renamed: the lenses would say. */
        if (!followed && nparks)
            stm_buf_puts(b, "  Renames are not followed here: no schema directory given holds "
                            "both versions, so what was renamed is listed as dropped and added "
                            "(stemma history --lenses says).\n");
        break;
    }
    case RELATION_DIVERGENT:
        stm_buf_printf(b,
                       "  Shared columns only ([policy] divergent = \"shared\"): the histories "
                       "parted after v%zu.\n",
                       c->common);
        stm_buf_printf(b, "  Syncs:          %s\n",
                       syncs.count ? stm_buf_str(&syncs.text) : "nothing");
        s_parks_block(b,
                      "Parked here for the policy (only there), replayed only if a later "
                      "version of this side has them the same:",
                      parks, nparks, PARKS_POLICY, true);
        s_parks_block(b,
                      "Parked on the remote for the policy (only here), replayed only if a "
                      "later version there has them the same:",
                      parks, nparks, PARKS_POLICY, false);
        break;
    case RELATION_UNRELATED:
        stm_buf_puts(b, "  Nothing: the histories have no common ancestor (different schemas).\n");
        break;
    }
    if (translated.count)
        stm_buf_printf(b, "  Translated between the versions (renamed, history --lenses):\n    %s\n",
                       stm_buf_str(&translated.text));
    /* A column whose type changed: what the older side parks replays once it has the
     * newer type; what it wrote never fits the newer column. */
    if (conflicts.count && c->relation != RELATION_UNRELATED)
        stm_buf_printf(b, "  Same name, another type or key role (parked where they arrive%s):\n    %s\n",
                       c->relation == RELATION_DIVERGENT
                           ? ", on both sides"
                           : "; the older side replays those it parked when it migrates to the "
                             "newer version, what it wrote stays parked on the newer side",
                       stm_buf_str(&conflicts.text));
    /* Between unrelated histories nothing syncs at all (the JSON still names them). */
    if (c->relation != RELATION_UNRELATED) {
        s_unsynced_summary(b, u);
        s_per_device_summary(b, u);
    }
    free(parks);
    stm_buf_free(&syncs.text);
    stm_buf_free(&conflicts.text);
    stm_buf_free(&translated.text);
}

static void s_side_line(buf_t *b, const char *label, int width, const lineage_t *l)
{
    const lineage_version *h = stm_lineage_head(l);
    if (!h) {
        stm_buf_printf(b, "%-6s  %-*s  (no versions)\n", label, width, stm_lineage_name(l));
        return;
    }
    char id[STM_ID_SHORT_LEN + 1];
    stm_id_short(&h->id, id);
    stm_buf_printf(b, "%-6s  %-*s  v%-4d %s\n", label, width, stm_lineage_name(l), h->number, id);
}

static char *s_compare_text(const comparison_t *c, const lineage_t *local, const lineage_t *remote,
                            const s_unsynced *u, bool followed)
{
    buf_t b = BUF_INIT;
    int width = (int)strlen(stm_lineage_name(local));
    if ((int)strlen(stm_lineage_name(remote)) > width)
        width = (int)strlen(stm_lineage_name(remote));
    s_side_line(&b, "local", width, local);
    s_side_line(&b, "remote", width, remote);
    stm_buf_printf(&b, "\nrelation: %s", stm_relation_name(c->relation));
    if (c->relation == RELATION_DIVERGENT) {
        char id[STM_ID_SHORT_LEN + 1];
        stm_id_short(&c->common_id, id);
        stm_buf_printf(&b, " (common ancestor v%zu %s)", c->common, id);
    }
    stm_buf_puts(&b, "\n\n");
    int name_width = 5;
    for (size_t i = 0; i < c->nfamilies; i++)
        if ((int)strlen(c->families[i].name) > name_width)
            name_width = (int)strlen(c->families[i].name);
    stm_buf_printf(&b, "%-*s  %-10s  %s\n", name_width, "table", "history", "columns");
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        stm_buf_printf(&b, "%-*s  %-10s  ", name_width, f->name, stm_relation_name(f->relation));
        s_family_cell(&b, f);
        /* A table that cannot sync is no less listed: said so, the reason below. */
        bool here = f->local_live && stm_syncable_find(u->local, u->nlocal, f->name);
        bool there = f->remote_live && stm_syncable_find(u->remote, u->nremote, f->name);
        if (here || there)
            stm_buf_printf(&b, "; never synced %s", here && there ? "on either side"
                                                    : here        ? "here"
                                                                  : "there");
        stm_buf_putc(&b, '\n');
    }
    s_compare_summary(&b, c, local, remote, u, followed);
    return stm_buf_detach(&b);
}

static void s_json_head(jsonw_t *w, const char *key, const lineage_t *l)
{
    const lineage_version *h = stm_lineage_head(l);
    stm_jsonw_key(w, key);
    stm_jsonw_object_begin(w);
    stm_jsonw_key(w, "schema_set");
    stm_jsonw_string(w, stm_lineage_name(l));
    stm_jsonw_key(w, "version");
    stm_jsonw_int(w, h ? h->number : 0);
    if (h) {
        cli_json_id(w, "id", &h->id);
    } else {
        stm_jsonw_key(w, "id");
        stm_jsonw_null(w);
    }
    stm_jsonw_object_end(w);
}

static char *s_compare_json(const comparison_t *c, const lineage_t *local, const lineage_t *remote,
                            const s_unsynced *u, bool followed)
{
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, true);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "relation");
    stm_jsonw_string(&w, stm_relation_name(c->relation));
    stm_jsonw_key(&w, "common_ancestor");
    if (c->common) {
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "version");
        stm_jsonw_int(&w, (int64_t)c->common);
        cli_json_id(&w, "id", &c->common_id);
        stm_jsonw_object_end(&w);
    } else {
        stm_jsonw_null(&w);
    }
    s_json_head(&w, "local", local);
    s_json_head(&w, "remote", remote);
    stm_jsonw_key(&w, "families");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "name");
        stm_jsonw_string(&w, f->name);
        stm_jsonw_key(&w, "relation");
        stm_jsonw_string(&w, stm_relation_name(f->relation));
        stm_jsonw_key(&w, "local_live");
        stm_jsonw_bool(&w, f->local_live);
        stm_jsonw_key(&w, "remote_live");
        stm_jsonw_bool(&w, f->remote_live);
        for (int r = COLUMN_SHARED; r <= COLUMN_CONFLICTING; r++) {
            stm_jsonw_key(&w, stm_column_relation_name((column_relation)r));
            stm_jsonw_array_begin(&w);
            for (size_t k = 0; k < f->ncolumns[r]; k++)
                stm_jsonw_string(&w, f->columns[r][k]);
            stm_jsonw_array_end(&w);
        }
        stm_jsonw_key(&w, "renamed");
        stm_jsonw_array_begin(&w);
        for (size_t k = 0; k < f->nrenamed; k++) {
            stm_jsonw_object_begin(&w);
            stm_jsonw_key(&w, "here");
            stm_jsonw_string(&w, f->renamed[k].here);
            stm_jsonw_key(&w, "there");
            stm_jsonw_string(&w, f->renamed[k].there);
            stm_jsonw_object_end(&w);
        }
        stm_jsonw_array_end(&w);
        stm_jsonw_key(&w, "renamed_table");
        stm_jsonw_string(&w, f->renamed_table);
        stm_jsonw_object_end(&w);
    }
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "unsynced");
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "local");
    unsynced_text_json(&w, u->local, u->nlocal);
    stm_jsonw_key(&w, "remote");
    unsynced_text_json(&w, u->remote, u->nremote);
    stm_jsonw_object_end(&w);
    /* What parks, where, and the version that replays it (compare_parks.h). */
    parks_item *parks = NULL;
    size_t nparks =
        compare_parks(c, local, remote, u->local, u->nlocal, u->remote, u->nremote, &parks);
    stm_jsonw_key(&w, "renames_followed");
    stm_jsonw_bool(&w, followed);
    stm_jsonw_key(&w, "parks");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < nparks; i++) {
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "table");
        stm_jsonw_string(&w, parks[i].table);
        stm_jsonw_key(&w, "column");
        stm_jsonw_string(&w, parks[i].column);
        stm_jsonw_key(&w, "parked");
        stm_jsonw_string(&w, parks[i].here ? "here" : "there");
        stm_jsonw_key(&w, "kind");
        stm_jsonw_string(&w, compare_parks_kind_name(parks[i].kind));
        stm_jsonw_key(&w, parks[i].kind == PARKS_DROPPED ? "dropped_at" : "replayed_at");
        if (parks[i].kind != PARKS_POLICY && parks[i].version)
            stm_jsonw_int(&w, parks[i].version);
        else
            stm_jsonw_null(&w);
        stm_jsonw_object_end(&w);
    }
    stm_jsonw_array_end(&w);
    free(parks);
    stm_jsonw_key(&w, "keys_per_device");
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "local");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < u->nlocal_per_device; i++)
        stm_jsonw_string(&w, u->local_per_device[i]);
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "remote");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < u->nremote_per_device; i++)
        stm_jsonw_string(&w, u->remote_per_device[i]);
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    stm_jsonw_object_end(&w);
    return stm_buf_detach(&b);
}

/* True when id is a version of l. */
static bool s_holds(const lineage_t *l, const stm_id *id)
{
    for (size_t i = 0; i < stm_lineage_count(l); i++)
        if (stm_id_equal(&stm_lineage_version_at(l, i)->id, id))
            return true;
    return false;
}

int cmd_compare(int argc, char **argv)
{
    static const struct option options[] = {{"format", required_argument, NULL, 'f'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"remote-layout", required_argument, NULL, 'R'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    cli_format format = CLI_FORMAT_TEXT;
    schemaset_layout layouts[2] = {LAYOUT_AUTO, LAYOUT_AUTO}; /* LOCAL's, REMOTE's */
    int c;
    opterr = 0;
    /* Options may come before or after the two paths. */
    while ((c = getopt_long(argc, argv, ":f:L:R:h", options, NULL)) != -1) {
        switch (c) {
        case 'L':
        case 'R':
            if (cli_parse_layout("compare", optarg, &layouts[c == 'R']) != CLI_OK)
                return CLI_BAD_INPUT;
            break;
        case 'f':
            if (!cli_parse_format(optarg, 3u, &format))
                return cli_usage_error("compare", "--format must be text or json, not '%s'",
                                       optarg);
            break;
        case 'h':
            fputs(s_compare_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("compare", argv[optind - 1], c);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("compare", "expected two histories, LOCAL and REMOTE, got %d",
                               argc - optind);
    stm_error err = {0};
    lineage_t *local = NULL, *remote = NULL;
    if (cli_load_lineage(argv[optind], layouts[0], &local, &err) != STM_OK)
        return cli_fail("compare", &err);
    if (cli_load_lineage(argv[optind + 1], layouts[1], &remote, &err) != STM_OK) {
        stm_lineage_destroy(&local);
        return cli_fail("compare", &err);
    }
    comparison_t *cmp = stm_relation_compare(local, remote);
    /* Renames followed through the lenses of a side whose migrations are here to run
     * (a directory) and hold both heads. */
    bool followed = false;
    for (int side = 0; side < 2; side++) {
        lens_set_t *lenses = NULL;
        stm_error ignored = {0};
        const lineage_t *set = side ? remote : local;
        if (cli_load_lenses(argv[optind + side], layouts[side], &lenses, &ignored) == STM_OK) {
            stm_comparison_follow(cmp, lenses, set);
            followed |= s_holds(set, &cmp->local_id) && s_holds(set, &cmp->remote_id);
        }
        stm_lens_destroy(&lenses);
    }
    s_unsynced u;
    s_unsynced_read(&u, local, remote);
    char *text = format == CLI_FORMAT_JSON ? s_compare_json(cmp, local, remote, &u, followed)
                                           : s_compare_text(cmp, local, remote, &u, followed);
    s_unsynced_free(&u);
    stm_comparison_destroy(&cmp);
    stm_lineage_destroy(&local);
    stm_lineage_destroy(&remote);
    stm_err rc = cli_write_output(NULL, text, &err);
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("compare", &err);
}
