/* migrate_text.h - the migrator's plan, progress and result as the command line shows
 * them: sync/migrate.h prints nothing, so that an application embedding it can show
 * its plan and progress its own way. Shared by migrate and rollback (cmd_store.c) and
 * init --migrate (cmd_node.c), so that each says the same thing the same way.
 *
 * The report goes to out, a line at a time as things happen (flushed, so a person or
 * a pipe sees each step when it ends). The elapsed-time line of a long step goes to
 * stderr, and only when out is a terminal: a script piping the output gets none of it. */
#ifndef STM_MIGRATE_TEXT_H
#define STM_MIGRATE_TEXT_H

#include "base/buf.h"
#include "base/error.h"
#include "base/jsonw.h"
#include "sync/migrate.h"

#include <stdio.h>

/* The dry run: plans what migrate (MIGRATE_UP) or rollback (MIGRATE_DOWN) would do with
 * opts and writes the plan, its SQL included, to out, then every table of the target
 * version that would not be synced, each with why. Returns the planner's code; on a
 * refusal, what was checked (the database and its drift) is written first and err says
 * why. */
stm_err migrate_text_plan(migrate_t *m, const migrate_options *opts, migrate_direction direction,
                          FILE *out, stm_error *err);

/* Runs migrate (MIGRATE_UP) or rollback (MIGRATE_DOWN) with opts, whose progress
 * fields are this function's: each step is written to out as it ends, then the
 * version the database is at and every table of it that is not synced, with why. A
 * long step's time and rows are drawn on a terminal (progress.h) unless quiet. Returns
 * the run's code (err says why it failed). */
stm_err migrate_text_run(migrate_t *m, const migrate_options *opts, migrate_direction direction,
                         FILE *out, bool quiet, stm_error *err);

/* After migrate (run or dry) refused a database made without stemma whose schema is no
 * version's (opts->baseline), with more differences than its one-line error names
 * (SCHEMACMP_SUMMARY_MAX): writes each way it differs from the closest version to out,
 * one a line ("  has column items.qty that version 3 does not have"), below that line.
 * Nothing otherwise. */
void migrate_text_baseline_diffs(migrate_t *m, const migrate_options *opts, FILE *out);

/* What status says of a database made without stemma (stm_migrate_untracked): the
 * version its schema is, the versions it cannot tell apart, or how it differs from the
 * closest one. As text appended to b ("baseline  ..." lines, nothing for any other
 * database), or, w not NULL, as the JSON member "baseline" written to w (null for any
 * other database). STM_EDB or STM_EINPUT as stm_migrate_recognise's. */
stm_err migrate_text_baseline_status(migrate_t *m, buf_t *b, jsonw_t *w, stm_error *err);

#endif
