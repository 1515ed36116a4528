/* cmd_trust.c - stemma trust: the keys a node trusts, changed on the running node
 * through its control socket, or in its files when none runs. */
#include "cli.h"
#include "commands.h"
#include "node/config.h"
#include "node/dirlock.h"
#include "node/keys.h"
#include "node/known_peers.h"
#include "node/zap.h"
#include "base/mem.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Prints a reply: one starting "error: " goes to stderr and fails. */
static int s_print_reply(const char *reply)
{
    if (strncmp(reply, "error: ", 7) == 0) {
        fprintf(stderr, "stemma trust: %s", reply + 7);
        return CLI_FAILED;
    }
    fputs(reply, stdout);
    fflush(stdout);
    return CLI_OK;
}

/* No node runs on dir (this process holds its lock): the same request, answered
 * from node.toml and known_peers as a node would answer it. */
static int s_offline(const char *dir, const char *request)
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
        code = s_print_reply("error: this node runs insecure ([security] insecure = true): no "
                             "key is checked, so none can be trusted or removed\n");
    } else {
        zap_t *z = stm_zap_new(&cfg, known, nknown);
        zap_change change;
        stm_id key;
        char *reply = stm_zap_request(z, request, &change, &key);
        code = s_print_reply(reply);
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

int cmd_trust(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(s_trust_help, stdout);
        return CLI_OK;
    }
    /* The verb and the key come first: a Z85 key may start with '-'. */
    if (argc < 2)
        return cli_usage_error("trust", "say add KEY, remove KEY or list");
    const char *verb = argv[1];
    bool keyed = strcmp(verb, "add") == 0 || strcmp(verb, "remove") == 0;
    if (!keyed && strcmp(verb, "list") != 0)
        return cli_usage_error("trust", "unknown '%s': say add KEY, remove KEY or list", verb);
    if (keyed && argc < 3)
        return cli_usage_error("trust", "%s needs a KEY", verb);
    stm_id key;
    if (keyed && !stm_keys_parse(argv[2], &key))
        return cli_usage_error("trust", "'%s' is not a key (40 Z85 characters or 64 hex digits)",
                               argv[2]);
    int first = keyed ? 3 : 2;
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
            fputs(s_trust_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("trust", sub_argv[optind - 1], c);
        }
    }
    if (optind < sub_argc)
        return cli_usage_error("trust", "unexpected argument '%s'", sub_argv[optind]);
    if (!dir == !control)
        return cli_usage_error("trust", "give --dir NODE_DIR or --control ENDPOINT (one of them)");
    /* Z85 always: the request stays short, whatever form the key was given in. */
    char request[64];
    if (keyed) {
        char z85[KEYS_Z85_LEN + 1];
        stm_keys_to_z85(&key, z85);
        snprintf(request, sizeof request, "trust %s %s", verb, z85);
    } else {
        snprintf(request, sizeof request, "trust list");
    }
    if (dir) {
        /* Holding the directory's lock: no node runs there, and none starts while the
         * files are edited. */
        dirlock_t *lock = NULL;
        stm_error lock_err = {0};
        if (stm_dirlock_acquire(dir, &lock, &lock_err) == STM_OK) {
            int code = s_offline(dir, request);
            stm_dirlock_release(&lock);
            return code;
        }
    }
    char *reply;
    size_t len;
    int code = cli_ask_node("trust", dir, control, request, &reply, &len);
    if (code != CLI_OK)
        return code;
    code = s_print_reply(reply);
    free(reply);
    return code;
}
