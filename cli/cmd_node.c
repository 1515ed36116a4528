/* cmd_node.c - the commands that set up and run a node: init (make a node's directory:
 * node.toml and its key pair). */
#include "cli.h"
#include "commands.h"
#include "node/config.h"
#include "node/dirlock.h"
#include "node/endpoint.h"
#include "node/keys.h"
#include "migrate_text.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/schemaset.h"
#include "sync/migrate.h"
#include "sync/apply.h"
#include "sync/origin.h"
#include "sync/store.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- init ---- */

static const char *s_init_help =
    "usage: stemma init --dir NODE_DIR --db FILE --schemas DIR [--layout NAME]\n"
    "                   [--bind ENDPOINT] [--advertise ENDPOINT] [--control ENDPOINT]\n"
    "                   [--peer KEY@ENDPOINT]... [--trust KEY]...\n"
    "                   [--trust-on-first-use] [--insecure] [--migrate] [--force]\n"
    "                   [--new-identity]\n"
    "\n"
    "Sets up a node: creates NODE_DIR (mode 0700) when it is missing, writes\n"
    "NODE_DIR/node.toml with every setting and a comment on each, and makes the node's\n"
    "CURVE key pair: NODE_DIR/node.key (the secret key, mode 0600) and NODE_DIR/node.pub.\n"
    "The public key is printed last, as 'public key: KEY'; give it to the peers that\n"
    "connect to this node. Keys are shown in Z85 (40 characters) and given in Z85 or\n"
    "hex (64 digits).\n"
    "\n"
    "The schema set DIR must load (every migration runs in memory first). With\n"
    "--migrate the database FILE is brought to DIR's newest version, after a backup, as\n"
    "'stemma migrate' does. The writes FILE records carry an origin of its own (printed),\n"
    "a new one whenever the file is a copy or was restored.\n"
    "\n"
    "init refuses a NODE_DIR that holds a node already (node.toml or node.key). With\n"
    "--force it writes node.toml again and keeps the key pair. --new-identity (which\n"
    "implies --force) is for a device made from an image of another: a new key pair\n"
    "(the old one kept as node.key.old and node.pub.old) and a new origin for FILE,\n"
    "its data kept; peers must then trust the new key.\n"
    "\n"
    "  --dir NODE_DIR         the node's directory\n"
    "  --db FILE              the application's SQLite database\n"
    "  --schemas DIR          the directory of numbered migrations\n"
    "  --layout NAME          how DIR names its migrations: stemma, flyway, diesel,\n"
    "                         sqlx, dbmate, goose or golang-migrate (default: found\n"
    "                         from its files); written to node.toml\n"
    "  --bind ENDPOINT        where the node listens for peers: tcp://HOST:PORT or\n"
    "                         ipc://PATH (default " CONFIG_DEFAULT_BIND ")\n"
    "  --advertise ENDPOINT   where peers are told to reach this node (default: the\n"
    "                         --bind endpoint, or none when its host is a wildcard,\n"
    "                         *, 0.0.0.0 or [::], which init then warns about)\n"
    "  --control ENDPOINT     where the node answers queries (default\n"
    "                         ipc://NODE_DIR/" CONFIG_CONTROL_SOCKET ")\n"
    "  --peer KEY@ENDPOINT    a peer to connect to, KEY its public key (repeatable);\n"
    "                         the key is trusted. ENDPOINT alone only with --insecure\n"
    "  --trust KEY            trust a peer's public key (repeatable)\n"
    "  --trust-on-first-use   accept a peer with an unknown key and remember its key\n"
    "                         in NODE_DIR/known_peers\n"
    "  --insecure             plain TCP: no encryption, no authentication (a closed\n"
    "                         test network only)\n"
    "  --migrate              migrate FILE to the newest version of DIR\n"
    "  --force                rewrite node.toml in a NODE_DIR that has one; the key\n"
    "                         pair is kept\n"
    "  --new-identity         give this node a new key pair and its database a new\n"
    "                         origin (an imaged device), keeping its data\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit status: 0 done, 2 bad usage or bad input (NODE_DIR holds a node already, a\n"
    "bad endpoint or key, a schema set that does not load), 1 any other failure.\n";

/* Creates dir and any missing parent, each private to its owner: a node directory
 * holds the node's secret key. An existing directory is left as it is. */
static stm_err s_mkdirs(const char *dir, bool *created, stm_error *err)
{
    struct stat st;
    *created = false;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return stm_error_set(err, STM_EINPUT, "%s: exists and is not a directory", dir);
        return STM_OK;
    }
    char *path = stm_strdup(dir);
    stm_err rc = STM_OK;
    for (char *p = path + 1; rc == STM_OK; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(path, 0700) == 0) {
            *created = true;
            /* Exactly 0700, whatever the umask. */
            (void)chmod(path, 0700);
        } else if (errno != EEXIST) {
            rc = stm_error_set(err, STM_ESYS, "%s: cannot create: %s", path, strerror(errno));
        }
        if (last)
            break;
        *p = '/';
    }
    free(path);
    if (rc == STM_OK && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = stm_error_set(err, STM_EINPUT, "%s: exists and is not a directory", dir);
    return rc;
}

static bool s_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Moves the node's key pair aside (node.key.old, node.pub.old; older ones replaced), so
 * that a new one can be made. */
static stm_err s_set_key_aside(const char *dir, stm_error *err)
{
    const char *files[] = {KEYS_SECRET_FILE, KEYS_PUBLIC_FILE};
    for (size_t i = 0; i < 2; i++) {
        char *from = stm_config_path(dir, files[i]);
        size_t n = strlen(from) + 5;
        char *to = stm_malloc(n);
        snprintf(to, n, "%s.old", from);
        int failed = rename(from, to) != 0 && errno != ENOENT;
        if (failed)
            stm_error_set(err, STM_ESYS, "cannot move %s aside to %s: %s", from, to,
                          strerror(errno));
        else
            printf("moved %s aside to %s\n", from, to);
        free(from);
        free(to);
        if (failed)
            return STM_ESYS;
    }
    return STM_OK;
}

/* Opens a database stemma has set up, so that the writes made so far become operations
 * and its origin is recorded (a new one when it is a copy: sync/origin.h); *origin is
 * the origin its writes carry. *done says whether it was set up (nothing happens
 * otherwise). */
static stm_err s_take_db(const char *db, bool renew, bool *done, stm_id *origin,
                         stm_error *err)
{
    *done = false;
    if (!s_exists(db))
        return STM_OK;
    /* Read-only first: a database not set up for stemma is left byte for byte alone. */
    store_t *store = NULL;
    stm_err rc = stm_store_open(db, STORE_OPEN_READONLY, &store, err);
    if (rc != STM_OK)
        return rc;
    bool prepared = stm_store_is_prepared(store);
    stm_store_destroy(&store);
    if (!prepared)
        return STM_OK;
    rc = cli_open_db(db, &store, err);
    if (rc == STM_OK && renew)
        rc = stm_origin_renew(store, err);
    if (rc == STM_OK)
        rc = stm_store_node_id(store, origin, err);
    stm_store_destroy(&store);
    *done = rc == STM_OK;
    return rc;
}

typedef struct {
    const char *dir, *db, *schemas, *bind, *advertise, *control;
    schemaset_layout layout; /* --layout's, LAYOUT_AUTO without */
    const char **peers;      /* --peer arguments, lent by argv */
    size_t npeers, peers_cap;
    const char **trust; /* --trust arguments */
    size_t ntrust, trust_cap;
    bool tofu, insecure, migrate, force;
    bool new_identity; /* a new key pair (the old one kept aside) and a new origin */
} s_init_args;

/* The settings the arguments give, checked; a usage error's exit code otherwise. */
static int s_init_config(const s_init_args *a, node_config *cfg)
{
    stm_error why = {0};
    stm_config_init(cfg, a->dir);
    char *abs = stm_config_absolute(a->db);
    stm_config_set_str(&cfg->db, abs);
    free(abs);
    abs = stm_config_absolute(a->schemas);
    stm_config_set_str(&cfg->schemas, abs);
    free(abs);
    stm_config_set_str(&cfg->layout, stm_layout_name(a->layout));
    cfg->insecure = a->insecure;
    cfg->trust_on_first_use = a->tofu;
    if (a->bind) {
        if (a->bind[0] && stm_endpoint_check(a->bind, true, &why) != STM_OK)
            return cli_usage_error("init", "--bind: %s", why.msg);
        stm_config_set_str(&cfg->bind, a->bind);
    }
    if (a->advertise) {
        if (stm_endpoint_check(a->advertise, false, &why) != STM_OK)
            return cli_usage_error("init", "--advertise: %s", why.msg);
        if (stm_endpoint_is_wildcard(a->advertise))
            return cli_usage_error("init",
                                   "--advertise: '%s' is a wildcard address: peers dialling it "
                                   "reach their own machine",
                                   a->advertise);
        stm_config_set_str(&cfg->advertise, a->advertise);
    }
    if (a->control) {
        if (stm_endpoint_check(a->control, true, &why) != STM_OK)
            return cli_usage_error("init", "--control: %s", why.msg);
        stm_config_set_str(&cfg->control, a->control);
    } else if (stm_endpoint_check(cfg->control, true, &why) != STM_OK) {
        return cli_usage_error("init",
                               "the default control endpoint will not do: %s; give "
                               "--control ENDPOINT",
                               why.msg);
    }
    for (size_t i = 0; i < a->npeers; i++) {
        config_peer peer;
        if (stm_config_parse_peer(a->peers[i], a->insecure, &peer, &why) != STM_OK)
            return cli_usage_error("init", "--peer: %s%s", why.msg,
                                   strstr(why.msg, "has no key") ? " (--insecure)" : "");
        stm_config_add_peer(cfg, &peer);
        if (peer.has_key)
            stm_config_add_trusted(cfg, &peer.key);
        stm_config_peer_free(&peer);
    }
    for (size_t i = 0; i < a->ntrust; i++) {
        stm_id key;
        if (!stm_keys_parse(a->trust[i], &key))
            return cli_usage_error("init",
                                   "--trust: '%.100s' is not a key: expected 40 Z85 characters "
                                   "or 64 hex digits",
                                   a->trust[i]);
        stm_config_add_trusted(cfg, &key);
    }
    return CLI_OK;
}

/* Checks that the schema set loads and its migrations run, as the node will need. */
static stm_err s_check_schemas(const char *dir, schemaset_layout layout, stm_error *err)
{
    schemaset_t *set = NULL;
    lineage_t *lineage = NULL;
    stm_err rc = stm_schemaset_load_layout(dir, layout, &set, err);
    if (rc == STM_OK)
        rc = stm_lineage_build(set, &lineage, err);
    stm_lineage_destroy(&lineage);
    stm_schemaset_destroy(&set);
    return rc;
}

/* The work of init once the arguments are checked; returns an exit code. */
static int s_init_run(const s_init_args *a, node_config *cfg)
{
    stm_error err = {0};
    char *toml_path = stm_config_path(a->dir, CONFIG_FILE);
    char *key_path = stm_config_path(a->dir, KEYS_SECRET_FILE);
    char *db = stm_config_resolve(cfg, cfg->db);
    char *schemas = stm_config_resolve(cfg, cfg->schemas);
    migrate_t *m = NULL;
    node_keys *keys = NULL;
    dirlock_t *lock = NULL;
    int code = CLI_OK;
    bool had_key = s_exists(key_path);
    if (!a->force && (s_exists(toml_path) || had_key)) {
        stm_error_set(&err, STM_EINPUT,
                      "%s already exists: %s holds a node already (--force writes node.toml "
                      "again and keeps the key)",
                      s_exists(toml_path) ? toml_path : key_path, a->dir);
        code = cli_fail("init", &err);
        goto done;
    }
    /* --force rewrites a node's files and may migrate its database: never under a node
     * running there (node/dirlock.h), which would go on with what it read at start. */
    if (a->force && s_exists(a->dir) && stm_dirlock_acquire(a->dir, &lock, &err) != STM_OK) {
        stm_error_append(&err, "stop it before 'stemma init --force'");
        code = cli_fail("init", &err);
        goto done;
    }
    /* Everything that can be refused is refused before anything is written: the key
     * kept by --force, the schema set (with --migrate, stm_migrate_open also reads the
     * database and its drift), the database. */
    stm_err rc = had_key ? stm_keys_load(a->dir, &keys, &err) : STM_OK;
    if (rc == STM_OK && a->new_identity && !had_key)
        rc = stm_error_set(&err, STM_EUSAGE,
                           "%s holds no node: --new-identity gives an existing node (an image "
                           "of another) a new key pair",
                           a->dir);
    if (rc == STM_OK)
        rc = a->migrate ? cli_migrate_open(db, schemas, a->layout, &m, &err)
                        : s_check_schemas(schemas, a->layout, &err);
    if (rc == STM_OK && !a->migrate && s_exists(db)) {
        store_t *probe = NULL;
        rc = stm_store_open(db, STORE_OPEN_READONLY, &probe, &err);
        stm_store_destroy(&probe);
    }
    bool created = false;
    if (rc == STM_OK)
        rc = s_mkdirs(a->dir, &created, &err);
    if (rc == STM_OK && created)
        printf("created %s\n", a->dir);
    if (rc == STM_OK && m) {
        migrate_options opts = MIGRATE_OPTIONS_INIT;
        rc = migrate_text_run(m, &opts, MIGRATE_UP, stdout, false, &err);
        stm_migrate_destroy(&m);
    }
    if (rc != STM_OK) {
        code = cli_fail("init", &err);
        goto done;
    }
    /* From here on the node's files are written: a failure says so. */
    if (a->new_identity) {
        rc = s_set_key_aside(a->dir, &err);
        stm_keys_destroy(&keys);
        had_key = false;
    }
    if (rc == STM_OK && !had_key) {
        rc = stm_keys_generate(a->dir, &err);
        if (rc == STM_OK)
            printf("wrote %s (the secret key: keep it private) and %s/%s\n", key_path, a->dir,
                   KEYS_PUBLIC_FILE);
        if (rc == STM_OK)
            rc = stm_keys_load(a->dir, &keys, &err);
    } else {
        printf("kept %s (a node's key is never replaced)\n", key_path);
    }
    if (rc == STM_OK)
        rc = stm_config_save(cfg, &err);
    if (rc == STM_OK)
        printf("wrote %s\n", toml_path);
    if (rc == STM_OK && stm_endpoint_is_wildcard(cfg->bind) && !cfg->advertise[0])
        fprintf(stderr,
                "stemma init: warning: %s is a wildcard address and no --advertise is given: "
                "peers will be told no endpoint, so only those that list this node in their "
                "[peers] reach it; give --advertise tcp://ADDRESS:PORT with an address they "
                "can dial (node.toml: advertise)\n",
                cfg->bind);
    bool set = false;
    stm_id origin;
    if (rc == STM_OK)
        rc = s_take_db(db, a->new_identity, &set, &origin, &err);
    if (rc != STM_OK) {
        if (s_exists(toml_path) || s_exists(key_path))
            stm_error_append(&err, "the node's files are written: after fixing this, run "
                                   "'stemma init' again with --force (the key is kept)");
        code = cli_fail("init", &err);
        goto done;
    }
    char origin_hex[STM_ID_SHORT_LEN + 1];
    if (set) {
        stm_id_short(&origin, origin_hex);
        printf("database %s: its writes carry origin %s\n", db, origin_hex);
    } else {
        printf("note: %s is not set up for stemma yet; 'stemma init --force --migrate' sets it "
               "up\n",
               db);
    }
    printf("public key: %s\n", stm_keys_public_z85(keys));
    if (fflush(stdout) != 0) {
        stm_error_set(&err, STM_ESYS, "writing to stdout: %s", strerror(errno));
        code = cli_fail("init", &err);
    }
done:
    stm_dirlock_release(&lock);
    stm_keys_destroy(&keys);
    stm_migrate_destroy(&m);
    free(toml_path);
    free(key_path);
    free(db);
    free(schemas);
    return code;
}

int cmd_init(int argc, char **argv)
{
    enum {
        OPT_CONTROL = 256,
        OPT_ADVERTISE,
        OPT_TOFU,
        OPT_INSECURE,
        OPT_MIGRATE,
        OPT_FORCE,
        OPT_NEW_IDENTITY
    };
    static const struct option options[] = {{"dir", required_argument, NULL, 'D'},
                                            {"db", required_argument, NULL, 'd'},
                                            {"schemas", required_argument, NULL, 's'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"bind", required_argument, NULL, 'b'},
                                            {"advertise", required_argument, NULL, OPT_ADVERTISE},
                                            {"control", required_argument, NULL, OPT_CONTROL},
                                            {"peer", required_argument, NULL, 'p'},
                                            {"trust", required_argument, NULL, 't'},
                                            {"trust-on-first-use", no_argument, NULL, OPT_TOFU},
                                            {"insecure", no_argument, NULL, OPT_INSECURE},
                                            {"migrate", no_argument, NULL, OPT_MIGRATE},
                                            {"force", no_argument, NULL, OPT_FORCE},
                                            {"new-identity", no_argument, NULL, OPT_NEW_IDENTITY},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    s_init_args a = {0};
    int c, code = CLI_OK;
    opterr = 0;
    while (code == CLI_OK &&
           (c = getopt_long(argc, argv, "+:D:d:s:L:b:p:t:h", options, NULL)) != -1) {
        switch (c) {
        case 'D':
            a.dir = optarg;
            break;
        case 'd':
            a.db = optarg;
            break;
        case 's':
            a.schemas = optarg;
            break;
        case 'L':
            code = cli_parse_layout("init", optarg, &a.layout);
            break;
        case 'b':
            a.bind = optarg;
            break;
        case OPT_ADVERTISE:
            a.advertise = optarg;
            break;
        case OPT_CONTROL:
            a.control = optarg;
            break;
        case 'p':
            a.peers = stm_grow(a.peers, &a.peers_cap, a.npeers + 1, sizeof *a.peers);
            a.peers[a.npeers++] = optarg;
            break;
        case 't':
            a.trust = stm_grow(a.trust, &a.trust_cap, a.ntrust + 1, sizeof *a.trust);
            a.trust[a.ntrust++] = optarg;
            break;
        case OPT_TOFU:
            a.tofu = true;
            break;
        case OPT_INSECURE:
            a.insecure = true;
            break;
        case OPT_MIGRATE:
            a.migrate = true;
            break;
        case OPT_FORCE:
            a.force = true;
            break;
        case OPT_NEW_IDENTITY:
            a.new_identity = a.force = true;
            break;
        case 'h':
            fputs(s_init_help, stdout);
            free(a.peers);
            free(a.trust);
            return CLI_OK;
        default:
            code = cli_bad_option("init", argv[optind - 1], c);
        }
    }
    if (code == CLI_OK && optind < argc)
        code = cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    else if (code == CLI_OK && (!a.dir || !a.db || !a.schemas))
        code = cli_usage_error("init", "--dir NODE_DIR, --db FILE and --schemas DIR are required");
    else if (code == CLI_OK && (!*a.dir || !*a.db || !*a.schemas))
        code = cli_usage_error("init", "--dir, --db and --schemas must not be empty");
    node_config cfg = {0};
    if (code == CLI_OK)
        code = s_init_config(&a, &cfg);
    if (code == CLI_OK)
        code = s_init_run(&a, &cfg);
    stm_config_destroy(&cfg);
    free(a.peers);
    free(a.trust);
    return code;
}
