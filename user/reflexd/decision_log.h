/*
 * The decision log's file: JSON lines appended through a stdio stream that keeps the
 * file under a size cap. A write that would take the file past the cap first moves
 * FILE to FILE.1 (FILE.1 to FILE.2 ... up to the number kept) and starts a new FILE;
 * with none kept, FILE starts over. Each line carries DECISION_LOG_SCHEMA as "v", so
 * a reader (reflexctl decisions, the tests' jq) knows which fields to expect.
 */
#ifndef REFLEX_REFLEXD_DECISION_LOG_H
#define REFLEX_REFLEXD_DECISION_LOG_H

#include <stdint.h>
#include <stdio.h>

#define DECISION_LOG_SCHEMA 1

/* Limits for the logs opened from now on (reflexd sets them from its options). */
void decision_log_limits(uint64_t max_bytes, unsigned keep);
/* A line-buffered stream appending to path, or NULL with errno set. fclose() it. */
FILE *decision_log_open(const char *path);
/* Reopens the file by its name (after logrotate moved it, on SIGHUP); 0 or -errno. */
int decision_log_reopen(FILE *log);

#endif
