/* commands.h - the entry point of each stemma command (argv[0] is its name). Each
 * parses its own options, prints its own --help and returns an exit code (cli.h). */
#ifndef STM_COMMANDS_H
#define STM_COMMANDS_H

int cmd_history(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_changes(int argc, char **argv);
int cmd_vector(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_conflicts(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_peers(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_peer(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
