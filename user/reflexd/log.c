#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "reflexd/log.h"

#define LINE_MAX_LEN 1024

static struct {
	int fd;               /* the original stderr */
	bool journal;
	bool quiet;
	char line[LINE_MAX_LEN];
	size_t len;
	pthread_mutex_t last_lock;
	char last[LINE_MAX_LEN];
} lg = { .fd = -1, .last_lock = PTHREAD_MUTEX_INITIALIZER };

/* word as a word: not part of a counter name such as heartbeat_stale=0 */
static bool has_word(const char *line, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = strstr(line, word); p; p = strstr(p + 1, word)) {
		char before = p > line ? p[-1] : ' ', after = p[len];

		if (!isalnum((unsigned char)before) && before != '_' && after != '_' && after != '=')
			return true;
	}
	return false;
}

int log_priority_of(const char *line)
{
	static const char *const errors[] = { "cannot", "failed", "error", "not found", "No such" };
	static const char *const warnings[] = { "refused", "stale", "fails", "not watching", "warning", "dropped" };

	if (!strncmp(line, "window ", 7))
		return LOG_DEBUG;
	if (!strncmp(line, "libbpf: ", 8) && !has_word(line, "error") && !has_word(line, "failed"))
		return LOG_DEBUG;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (has_word(line, errors[i]))
			return LOG_ERR;
	for (size_t i = 0; i < sizeof(warnings) / sizeof(warnings[0]); i++)
		if (has_word(line, warnings[i]))
			return LOG_WARNING;
	return LOG_INFO;
}

static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(lg.fd, buf, len);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void emit_line(void)
{
	char prefix[8];
	int prio;

	lg.line[lg.len] = '\0';
	prio = log_priority_of(lg.line);
	if (prio <= LOG_WARNING) {
		pthread_mutex_lock(&lg.last_lock);
		snprintf(lg.last, sizeof(lg.last), "%.*s", (int)(lg.len && lg.line[lg.len - 1] == '\n' ?
								lg.len - 1 : lg.len), lg.line);
		pthread_mutex_unlock(&lg.last_lock);
	}
	if (!(lg.quiet && prio >= LOG_INFO)) {
		if (lg.journal) {
			snprintf(prefix, sizeof(prefix), "<%d>", prio);
			write_all(prefix, strlen(prefix));
		}
		write_all(lg.line, lg.len);
	}
	lg.len = 0;
}

static ssize_t filter_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	for (size_t i = 0; i < size; i++) {
		lg.line[lg.len++] = buf[i];
		/* a longer line is cut into lines of the buffer's size */
		if (buf[i] == '\n' || lg.len == sizeof(lg.line) - 2) {
			if (buf[i] != '\n')
				lg.line[lg.len++] = '\n';
			emit_line();
		}
	}
	return (ssize_t)size;
}

/* systemd sets JOURNAL_STREAM=DEV:INO for the stream it connected to stderr. */
static bool stderr_is_journal(int fd)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st))
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_setup(bool quiet)
{
	cookie_io_functions_t io = { .write = filter_write };
	FILE *f;
	int fd = dup(STDERR_FILENO);

	if (fd < 0)
		return -1;
	f = fopencookie(NULL, "w", io);
	if (!f) {
		close(fd);
		return -1;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	lg.fd = fd;
	lg.quiet = quiet;
	lg.journal = stderr_is_journal(fd);
	fflush(stderr);
	stderr = f;
	return 0;
}

void log_last_error(char *buf, size_t len)
{
	pthread_mutex_lock(&lg.last_lock);
	snprintf(buf, len, "%s", lg.last);
	pthread_mutex_unlock(&lg.last_lock);
}
