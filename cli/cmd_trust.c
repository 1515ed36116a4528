/* cmd_trust.c - stemma trust and stemma peer: the keys a node trusts and the peers it
 * dials, changed on the running node through its control socket, or in its files
 * (known_peers, node.toml) when none runs. */
#include "cli.h"
#include "commands.h"
#include "node/config.h"
#include "node/control.h"
#include "node/dirlock.h"
#include "node/keys.h"
#include "node/known_peers.h"
#include "node/peerlist.h"
#include "node/zap.h"
#include "base/mem.h"
#include "base/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_trust_help =
    "usage: stemma trust add KEY    (--dir NODE_DIR | --control ENDPOINT)\n"
    "       stemma trust remove KEY (--dir NODE_DIR | --control ENDPOINT)\n"
    "       stemma trust list       (--dir NODE_DIR | --control ENDPOINT)\n"
    "\n"
    "The public keys a node accepts connections from. add trusts KEY (40 Z85 characters\n"
    "or 64 hex digits) and writes it to NODE_DIR/known_peers; remove takes it out of\n"
    "known_peers and stops trusting it; list shows every key trusted and where from.\n"
    "\n"
    "On a running node the change is made at once: a key added may connect now; a key\n"
    "removed is refused at its next connection, what it sends on a connection already\n"
    "open is dropped, and its peer is reported refused. A key that node.toml trusts\n"
    "([security] trusted, or a key in [peers]) is not removed: edit node.toml and\n"
    "restart. With --dir and no node running there, the files are edited directly and\n"
    "the command says so.\n"
    "\n"
    "  --dir NODE_DIR     the node's directory\n"
    "  --control E        a running node's control endpoint (ipc://PATH or\n"
    "                     tcp://127.0.0.1:PORT)\n"
    "  -h, --help         this help\n";

static const char *s_peer_help =
    "usage: stemma peer add KEY@ENDPOINT (--dir NODE_DIR | --control ENDPOINT)\n"
    "       stemma peer remove KEY       (--dir NODE_DIR | --control ENDPOINT)\n"
    "\n"
    "The peers a node dials, in node.toml's [peers]. add writes KEY@ENDPOINT there and\n"
    "its key in [security] trusted, as 'stemma init --peer' does (an insecure node takes\n"
    "ENDPOINT alone); remove takes both out (KEY, or the ENDPOINT of a peer without a\n"
    "key). node.toml is written whole, in the commented layout 'stemma init' writes: its\n"
    "values are kept, comments of your own are not.\n"
    "\n"
    "On a running node the change is made at once: a peer added is trusted and dialled;\n"
    "a peer removed is no longer dialled and, unless known_peers still trusts its key,\n"
    "no longer trusted (as 'stemma trust remove'). With --dir and no node running there,\n"
    "node.toml is edited directly and the command says so.\n"
    "\n"
    "  --dir NODE_DIR     the node's directory\n"
    "  --control E        a running node's control endpoint\n"
    "  -h, --help         this help\n";

/* Prints a reply: one starting "error: " goes to stderr and fails. */
static int s_print_reply(const char *cmd, const char *reply)
{
    if (strncmp(reply, "error: ", 7) == 0) {
        fprintf(stderr, "stemma %s: %s", cmd, reply + 7);
        return CLI_FAILED;
    }
    fputs(reply, stdout);
    fflush(stdout);
    return CLI_OK;
}

/* No node runs on dir (this process holds its lock): a peer request, answered by
 * changing node.toml as a node would. */
static int s_peer_offline(const char *dir, const char *request)
{
    peerlist_result r;
    char *reply = stm_peerlist_request(dir, request, &r);
    int code = s_print_reply("peer", reply);
    if (r.change != PEERLIST_NOTHING)
        printf("no node is running on %s: node.toml was edited directly; a node started "
               "there dials the peers it lists\n",
               dir);
    free(reply);
    stm_peerlist_result_clear(&r);
    return code;
}

/* No node runs on dir (this process holds its lock): a trust request, answered from
 * node.toml and known_peers as a node would answer it. */
static int s_trust_offline(const char *dir, const char *request)
{
    stm_error err = {0};
    node_config cfg;
    stm_id *known = NULL;
    size_t nknown = 0;
    stm_err rc = stm_config_load(dir, &cfg, &err);
    if (rc == STM_OK)
        rc = stm_known_peers_load(dir, &known, &nknown, &err);
    if (rc != STM_OK) {
        stm_config_destroy(&cfg);
        return cli_fail("trust", &err);
    }
    int code;
    if (cfg.insecure) {
        code = s_print_reply("trust",
                             "error: this node runs insecure ([security] insecure = true): no "
                             "key is checked, so none can be trusted or removed\n");
    } else {
        zap_t *z = stm_zap_new(&cfg, known, nknown);
        zap_change change;
        stm_id key;
        char *reply = stm_zap_request(z, request, &change, &key);
        code = s_print_reply("trust", reply);
        if (change != ZAP_CHANGED_NOTHING)
            printf("no node is running on %s: known_peers was edited directly; a node "
                   "started there trusts what it says\n",
                   dir);
        free(reply);
        stm_zap_destroy(&z);
    }
    free(known);
    stm_config_destroy(&cfg);
    return code;
}

/* What stemma trust and stemma peer differ in. */
typedef struct {
    const char *cmd;         /* "trust" or "peer" */
    const char *help;        /* its --help */
    const char *verbs[2][2]; /* each verb and the name of its argument (NULL: none) */
    const char *list;        /* the verb that takes no argument, or NULL; with one (trust), the
                                argument is a key, checked here */
    int (*offline)(const char *dir, const char *request);
} s_edit;

/* The request to the node of dir: either none runs there (this process takes the
 * directory's lock, so none starts while e->offline edits the files) or one does and
 * answers on its control socket. Between the two, a node starting (locked, socket not
 * bound yet) or stopping (socket gone, lock not let go of yet) says "no node is
 * running" at once: asked again, every 50 ms, for CONTROL_ASK_TIMEOUT_MS at most. */
static int s_edit_dir(const s_edit *e, const char *dir, const char *request)
{
    stm_error err = {0};
    node_config cfg;
    if (stm_config_load(dir, &cfg, &err) != STM_OK) {
        stm_config_destroy(&cfg);
        return cli_fail(e->cmd, &err);
    }
    char *endpoint = stm_strdup(cfg.control);
    stm_config_destroy(&cfg);
    int64_t give_up = stm_monotime_ms() + CONTROL_ASK_TIMEOUT_MS;
    int code = CLI_OK;
    for (;;) {
        dirlock_t *lock = NULL;
        stm_error lock_err = {0};
        if (stm_dirlock_acquire(dir, &lock, &lock_err) == STM_OK) {
            code = e->offline(dir, request);
            stm_dirlock_release(&lock);
            break;
        }
        char *reply = NULL;
        size_t len;
        stm_error_clear(&err);
        if (stm_control_ask(endpoint, dir, request, &reply, &len, &err) == STM_OK) {
            code = s_print_reply(e->cmd, reply);
            free(reply);
            break;
        }
        if (strncmp(err.msg, "no node is running", 18) != 0 || stm_monotime_ms() >= give_up) {
            code = cli_fail(e->cmd, &err);
            break;
        }
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    free(endpoint);
    return code;
}

/* stemma trust and stemma peer: VERB [ARG] (--dir NODE_DIR | --control ENDPOINT). */
static int s_edit_command(const s_edit *e, int argc, char **argv)
{
    const char *cmd = e->cmd;
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(e->help, stdout);
        return CLI_OK;
    }
    /* The verb and its argument come first: a Z85 key may start with '-'. */
    const char *say = e->list ? "say add KEY, remove KEY or list" : "say add or remove";
    if (argc < 2)
        return cli_usage_error(cmd, "%s", say);
    const char *verb = argv[1], *what = NULL;
    bool known = e->list && strcmp(verb, e->list) == 0;
    for (int i = 0; i < 2 && !known; i++)
        if (strcmp(verb, e->verbs[i][0]) == 0) {
            known = true;
            what = e->verbs[i][1];
        }
    if (!known)
        return cli_usage_error(cmd, "unknown '%s': %s", verb, say);
    if (what && argc < 3)
        return cli_usage_error(cmd, "%s needs a %s", verb, what);
    const char *arg = what ? argv[2] : NULL;
    stm_id key;
    if (arg && e->list && !stm_keys_parse(arg, &key))
        return cli_usage_error(cmd, "'%s' is not a key (40 Z85 characters or 64 hex digits)", arg);
    int first = what ? 3 : 2;
    static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                                            {"control", required_argument, NULL, 'c'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dir = NULL, *control = NULL;
    int c;
    opterr = 0;
    optind = 1;
    int sub_argc = argc - first + 1;
    char **sub_argv = argv + first - 1; /* sub_argv[0] stands for the command's name */
    while ((c = getopt_long(sub_argc, sub_argv, "+:d:c:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'h':
            fputs(e->help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option(cmd, sub_argv[optind - 1], c);
        }
    }
    if (optind < sub_argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", sub_argv[optind]);
    if (!dir == !control)
        return cli_usage_error(cmd, "give --dir NODE_DIR or --control ENDPOINT (one of them)");
    char request[CONTROL_MAX_REQUEST + 1];
    if (!arg)
        snprintf(request, sizeof request, "%s %s", cmd, verb);
    else if (strlen(cmd) + strlen(verb) + strlen(arg) + 2 > CONTROL_MAX_REQUEST)
        return cli_usage_error(cmd, "'%.60s...' is too long", arg);
    else
        snprintf(request, sizeof request, "%s %s %s", cmd, verb, arg);
    if (!dir) {
        char *reply;
        size_t len;
        int code = cli_ask_node(cmd, dir, control, request, &reply, &len);
        if (code == CLI_OK)
            code = s_print_reply(cmd, reply);
        free(reply);
        return code;
    }
    return s_edit_dir(e, dir, request);
}

int cmd_trust(int argc, char **argv)
{
    const s_edit e = {
        "trust", s_trust_help, {{"add", "KEY"}, {"remove", "KEY"}}, "list", s_trust_offline};
    return s_edit_command(&e, argc, argv);
}

int cmd_peer(int argc, char **argv)
{
    const s_edit e = {
        "peer", s_peer_help, {{"add", "KEY@ENDPOINT"}, {"remove", "KEY"}}, NULL, s_peer_offline};
    return s_edit_command(&e, argc, argv);
}
