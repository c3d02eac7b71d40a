/*
 * reflexd's log: every part of reflexd writes "reflexd: ..." lines to stderr; this
 * puts a line filter in front of it that gives each line a syslog priority (from
 * its words: "cannot", "failed", "error" are errors; "refused", "stale", "fails"
 * warnings; libbpf's chatter and per-window lines debug; the rest info), prefixes
 * it with "<N>" when stderr is the journal (JOURNAL_STREAM matches it), drops info
 * and debug with --quiet, and remembers the last warning or error for reflexctl
 * status. One event is one line.
 */
#ifndef REFLEX_REFLEXD_LOG_H
#define REFLEX_REFLEXD_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Replaces stderr with the filter. 0, or -1 (stderr unchanged). */
int log_setup(bool quiet);
/* The syslog priority the filter gives a line (LOG_ERR .. LOG_DEBUG). */
int log_priority_of(const char *line);
/* The last warning or error line, "" if none; copied into buf. */
void log_last_error(char *buf, size_t len);

#endif
