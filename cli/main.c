/* main.c - the stemma command: finds the command named by the first argument and
 * hands it the rest. */
#include "cli.h"
#include "commands.h"

#include "node/wire.h"
#include "node/zsock.h"
#include "sync/bundle.h"
#include "sync/store.h"

#include <msgpack.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    cli_command_fn run;
    const char *summary;
} s_command;

static const s_command s_commands[] = {
    {"history", cmd_history, "list the versions of a schema set, or those applied to a database"},
    {"export", cmd_export, "write a schema set's whole history as TOML"},
    {"compare", cmd_compare, "say how two schema histories relate and what would sync"},
    {"changes", cmd_changes, "write the operations another database lacks to a bundle"},
    {"vector", cmd_vector, "write a database's version vector"},
    {"apply", cmd_apply, "apply a bundle of operations, parking what cannot apply"},
    {"conflicts", cmd_conflicts, "list, keep or discard the rows kept aside under a taken key"},
    {"migrate", cmd_migrate, "apply pending migrations to a database, after a backup"},
    {"status", cmd_status, "say which version a database is at, what is pending, any drift"},
    {"rollback", cmd_rollback, "take a database back to an earlier version"},
    {"restore", cmd_restore, "put a backup back as the database"},
    {"init", cmd_init, "set up a node: its node.toml, its key pair, its database"},
    {"node", cmd_node, "run a node: meet peers, judge their lineage, sync operations"},
    {"report", cmd_report, "ask a running node about itself and its peers"},
    {"peers", cmd_peers, "a running node's peers, one line each"},
    {"stats", cmd_stats, "a running node's counters"},
    {"compact", cmd_compact, "prune what later writes replaced, by a node or on a file"},
    {"trust", cmd_trust, "add, remove or list the keys a node trusts, running or not"},
    {"peer", cmd_peer, "add or remove a peer a node dials, running or not"},
    {"demo", cmd_demo, "three nodes on loopback at mixed versions, end to end"},
};

/* What a bug report needs: this build, the formats it reads and writes, the libraries
 * it runs with. */
static void s_version(void)
{
    char zmq[32];
    stm_zsock_version(zmq, sizeof zmq);
    printf("stemma %s\n", STEMMA_VERSION);
    printf("store format %d, bundle format %d, wire protocol %d\n", STORE_FORMAT,
           BUNDLE_VERSION, WIRE_VERSION);
    printf("SQLite %s, libzmq %s, libsodium %s, msgpack-c %s\n", sqlite3_libversion(), zmq,
           sodium_version_string(), msgpack_version());
}

static void s_usage(FILE *out)
{
    fputs("usage: stemma COMMAND [OPTIONS]\n"
          "\n"
          "stemma knows a schema's version history, and compares histories exactly.\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", s_commands[i].name, s_commands[i].summary);
    fputs("\n'stemma COMMAND --help' (or 'stemma help COMMAND') tells more; 'stemma -V'\n"
          "(--version) the version, the formats and the libraries. docs/user-guide.md is\n"
          "the manual.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return CLI_BAD_INPUT;
    }
    const char *name = argv[1];
    /* `stemma help CMD` is `stemma CMD --help`. */
    if (strcmp(name, "help") == 0 && argc == 3) {
        for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
            if (strcmp(argv[2], s_commands[i].name) == 0) {
                char *args[] = {argv[2], "--help", NULL};
                return s_commands[i].run(2, args);
            }
        fprintf(stderr, "stemma help: unknown command '%s' (see 'stemma --help')\n", argv[2]);
        return CLI_BAD_INPUT;
    }
    if (strcmp(name, "help") == 0 && argc > 3) {
        fprintf(stderr, "stemma help: one command at most (stemma help COMMAND)\n");
        return CLI_BAD_INPUT;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        s_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        s_version();
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(name, s_commands[i].name) == 0)
            return s_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "stemma: unknown command '%s' (see 'stemma --help')\n", name);
    return CLI_BAD_INPUT;
}
