/* Noticing that a model file was replaced (written in place or renamed over, as
 * reflex-forge does), so reflexd reloads it without a SIGHUP. */
#ifndef REFLEX_MODEL_WATCH_H
#define REFLEX_MODEL_WATCH_H

#include <stdbool.h>

#define MODEL_WATCH_MAX 4

struct model_watch {
	int fd; /* inotify, non-blocking; -1 if none */
	int wd[MODEL_WATCH_MAX];
	char name[MODEL_WATCH_MAX][256]; /* base names watched in their directories */
	int count;
};

/* Watches the directories of the given paths (NULL entries skipped). 0, or -errno
 * (then nothing is watched and fd is -1). */
int model_watch_init(struct model_watch *w, const char *const *paths, int n);
/* Drains pending events; true if one of the watched files changed. */
bool model_watch_changed(struct model_watch *w);
void model_watch_free(struct model_watch *w);

#endif
