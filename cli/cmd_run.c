/* cmd_run.c - running a node and asking it questions: node, report, peers, stats. */
#include "cli.h"
#include "commands.h"
#include "sdnotify.h"
#include "node/config.h"
#include "node/control.h"
#include "node/known_peers.h"
#include "node/keys.h"
#include "base/mem.h"
#include "base/log.h"
#include "node/node.h"

#include <getopt.h>
#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop, s_reload;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_stop = 1;
}

static const char *s_node_help =
    "usage: stemma node --dir NODE_DIR [--log-format text|json]\n"
    "\n"
    "Runs the node set up by 'stemma init' in the foreground: it binds its mesh\n"
    "endpoint, connects to its peers (and to the peers they name), exchanges HELLOs,\n"
    "judges each peer's schema lineage, and syncs operations both ways. It logs one\n"
    "line per event on stderr; SIGINT or SIGTERM stop it cleanly. SIGHUP (systemctl\n"
    "reload) reads node.toml and known_peers again: trusted keys and peers change at\n"
    "once, and any other setting changed is logged as needing a restart. Under systemd\n"
    "(Type=notify) it says READY=1 once its sockets are bound. One node runs in a\n"
    "directory at a time: a second exits 1 with 'already running (pid N)'.\n"
    "'stemma report' asks it what it knows.\n"
    "\n"
    "  --dir NODE_DIR     the node's directory (node.toml, node.key, node.pub)\n"
    "  --log-format F     text (default) or json (one JSON object per line)\n"
    "  -h, --help         this help\n";

int cmd_node(int argc, char **argv)
{
    static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                                            {"log-format", required_argument, NULL, 'l'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:l:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'l':
            if (strcmp(optarg, "json") == 0)
                stm_log_set_json(true);
            else if (strcmp(optarg, "text") != 0)
                return cli_usage_error("node", "--log-format must be text or json, not '%s'",
                                       optarg);
            break;
        case 'h':
            fputs(s_node_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("node", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("node", "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return cli_usage_error("node", "--dir NODE_DIR is required");
    stm_error err = {0};
    /* Before the sockets are bound: a signal from then on stops the node through its
     * loop (BYE, the control socket removed), never by the default action. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
#ifdef __GLIBC__
    /* Large buffers (a peer's whole vector: 3.6 MB with 100,000 origins; a large row
     * change) are mapped and given back when freed. By default glibc raises this
     * threshold to the largest block freed, after which such buffers come from the heap
     * and stay resident once freed: the daemon's memory grew by what it once needed. An
     * application running the node in its own process makes its own choice. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
    node_t *node = NULL;
    stm_err rc = stm_node_open(dir, &node, &err);
    if (rc == STM_OK) {
        /* Bound and trusted: `systemctl start` returns now (Type=notify). */
        cli_sd_notify("READY=1\nSTATUS=running");
        rc = stm_node_run(node, &s_stop, &s_reload, &err);
        cli_sd_notify("STOPPING=1");
    }
    stm_node_destroy(&node);
    return rc == STM_OK ? CLI_OK : cli_fail("node", &err);
}

/* ---- asking a running node ---- */

static const char *s_report_help =
    "usage: stemma report (--dir NODE_DIR | --control ENDPOINT) [--format text|json|toml|dot]\n"
    "\n"
    "Asks a running node, over its control socket, about itself and every peer: id,\n"
    "endpoint, state (connecting, connected, gone, refused), the relation of their\n"
    "schema histories and the common ancestor, per table the shared and one-sided\n"
    "columns, what syncs and why, operations sent, received and parked, how far\n"
    "behind the peer is, when it was last seen, and warnings. --format dot draws the\n"
    "mesh's lineage tree instead, for Graphviz: stemma report ... --format dot | dot -Tsvg\n"
    "\n"
    "  --dir NODE_DIR     the node's directory (its node.toml names the control endpoint)\n"
    "  --control E        the control endpoint itself (ipc://PATH or tcp://127.0.0.1:PORT)\n"
    "  --format F         text (default), json, toml or dot\n"
    "  -h, --help         this help\n";

int cli_ask_node(const char *cmd, const char *dir, const char *control, const char *request,
                 char **reply, size_t *len)
{
    stm_error err = {0};
    char *endpoint = NULL;
    *reply = NULL;
    if (control) {
        endpoint = stm_strdup(control);
    } else {
        node_config cfg;
        if (stm_config_load(dir, &cfg, &err) != STM_OK) {
            stm_config_destroy(&cfg);
            return cli_fail(cmd, &err);
        }
        endpoint = stm_strdup(cfg.control);
        stm_config_destroy(&cfg);
    }
    int code = CLI_OK;
    if (stm_control_ask(endpoint, dir, request, reply, len, &err) != STM_OK)
        code = cli_fail(cmd, &err);
    free(endpoint);
    return code;
}

/* Sends request to the node's control socket and prints the answer. */
static int s_ask(const char *cmd, const char *dir, const char *control, const char *request)
{
    char *reply;
    size_t len;
    int code = cli_ask_node(cmd, dir, control, request, &reply, &len);
    if (code == CLI_OK) {
        fwrite(reply, 1, len, stdout);
        fflush(stdout);
        free(reply);
    }
    return code;
}

/* The options report, peers and stats share. */
static int s_control_command(int argc, char **argv, const char *cmd, const char *help, bool formats)
{
    static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                                            {"control", required_argument, NULL, 'c'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dir = NULL, *control = NULL, *format = "text";
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:c:f:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'f':
            if (!formats)
                return cli_usage_error(cmd, "takes no --format (stemma report does)");
            if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0 &&
                strcmp(optarg, "toml") != 0 && strcmp(optarg, "dot") != 0)
                return cli_usage_error(cmd, "--format must be text, json, toml or dot, not '%s'",
                                       optarg);
            format = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option(cmd, argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir == !control)
        return cli_usage_error(cmd, "give --dir NODE_DIR or --control ENDPOINT (one of them)");
    char request[32];
    if (strcmp(cmd, "report") == 0)
        snprintf(request, sizeof request, "report %s", format);
    else
        snprintf(request, sizeof request, "%s", cmd);
    return s_ask(cmd, dir, control, request);
}

int cmd_report(int argc, char **argv)
{
    return s_control_command(argc, argv, "report", s_report_help, true);
}

static const char *s_peers_help =
    "usage: stemma peers (--dir NODE_DIR | --control ENDPOINT)\n"
    "\n"
    "The short form of 'stemma report': one line per peer with its state, schema set,\n"
    "version, relation and what syncs.\n";

int cmd_peers(int argc, char **argv)
{
    return s_control_command(argc, argv, "peers", s_peers_help, false);
}

static const char *s_stats_help =
    "usage: stemma stats (--dir NODE_DIR | --control ENDPOINT)\n"
    "\n"
    "A running node's counters: peers, operations held and parked, sent and received,\n"
    "malformed messages, refused keys, messages from unknown senders.\n";

int cmd_stats(int argc, char **argv)
{
    return s_control_command(argc, argv, "stats", s_stats_help, false);
}
