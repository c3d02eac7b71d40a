#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "reflexd/model_watch.h"

int model_watch_init(struct model_watch *w, const char *const *paths, int n)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	for (int i = 0; i < n && w->count < MODEL_WATCH_MAX; i++) {
		char dir[PATH_MAX];
		const char *slash;

		if (!paths[i])
			continue;
		if (w->fd < 0 && (w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
			return -errno;
		slash = strrchr(paths[i], '/');
		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - paths[i]) : 1, slash ? paths[i] : ".");
		if (slash == paths[i])
			snprintf(dir, sizeof(dir), "/");
		snprintf(w->name[w->count], sizeof(w->name[0]), "%s", slash ? slash + 1 : paths[i]);
		/* The directory, not the file: a rename over the file replaces its inode. */
		w->wd[w->count] = inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO);
		if (w->wd[w->count] < 0) {
			int err = -errno;

			model_watch_free(w);
			return err;
		}
		w->count++;
	}
	return 0;
}

bool model_watch_changed(struct model_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t len;

	if (w->fd < 0)
		return false;
	while ((len = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			for (int i = 0; i < w->count && ev->len; i++)
				if (ev->wd == w->wd[i] && !strcmp(ev->name, w->name[i]))
					changed = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return changed;
}

void model_watch_free(struct model_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->count = 0;
}
