/*
 * sql: every SQL statement the switch sends, in one place. Statements run on
 * the event loop are prepared by pgconn under the names below; the start-up
 * statements run once, before the loop, on a plain blocking connection.
 */
#ifndef SIKKA_SQL_H
#define SIKKA_SQL_H

#include <stddef.h>

#include "pgconn.h"

/* prepared on the ledger's connection */
#define SQL_POST_BATCH "post_batch"

extern const struct pgconn_stmt sql_ledger_stmts[];
extern const size_t sql_ledger_nstmts;

/* start-up (recovery.c) */
extern const char sql_boot[];
extern const char sql_load_participants[];
extern const char sql_load_scheme_accounts[];
extern const char sql_open_window[];
extern const char sql_preload_keys[];
extern const char sql_check_schema[];

#endif
