// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The DQN checkpoint format (train.h has the layout): save, load, validate. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <zlib.h>

#include "lib/fileio.h"
#include "dqn/train_internal.h"

#define CHECKPOINT_MAGIC "RXDQ"

struct wbuf {
	uint8_t *data;
	size_t len, cap;
	bool oom;
};

static void put_bytes(struct wbuf *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *data;

		while (cap < w->len + n)
			cap *= 2;
		data = realloc(w->data, cap);
		if (!data) {
			w->oom = true;
			return;
		}
		w->data = data;
		w->cap = cap;
	}
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, 8);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, 4);
}

static void put_f32(struct wbuf *w, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	put_u32(w, v);
}

static void put_f64(struct wbuf *w, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put_u64(w, v);
}

static void put_f32s(struct wbuf *w, const float *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_f32(w, f[i]);
}

static void serialize(const struct dqn_trainer *tr, struct wbuf *w)
{
	const struct dqn_train_opts *o = &tr->opts;
	const struct dqn_replay *rb = &tr->replay;
	size_t n = tr->online.n_params;

	put_bytes(w, CHECKPOINT_MAGIC, 4);
	put_u32(w, DQN_CHECKPOINT_VERSION);
	put_u64(w, o->seed);
	put_u32(w, o->steps_per_episode);
	put_u32(w, o->hidden);
	put_u32(w, o->batch);
	put_u32(w, o->replay_capacity);
	put_u32(w, o->replay_warmup);
	put_u32(w, o->target_sync);
	put_f32(w, o->lr);
	put_f32(w, o->gamma);
	put_f32(w, o->huber_delta);
	put_f32(w, o->advantage_alpha);
	put_f32(w, o->reward_floor);
	put_f32(w, o->weight_clip);
	put_f32(w, o->act_noise);
	put_u32(w, o->validate_every);
	put_u32(w, o->validate_scenarios);
	put_f64(w, o->eps_start);
	put_f64(w, o->eps_end);
	put_f64(w, o->eps_decay);
	put_u32(w, o->seed_features_only);
	put_u32(w, tr->n_in);
	put_u32(w, DQN_ACTIONS);
	put_u32(w, tr->episodes_done);
	put_u64(w, tr->decisions);
	put_u64(w, tr->updates);
	for (int i = 0; i < 4; i++)
		put_u64(w, tr->rng.s[i]);
	put_f32s(w, tr->online.params, n);
	put_f32s(w, tr->target.params, n);
	put_u64(w, tr->adam.t);
	put_f32s(w, tr->adam.m, n);
	put_f32s(w, tr->adam.v, n);
	put_f64(w, tr->act_max);
	put_u32(w, tr->has_best);
	put_u32(w, tr->best_episode);
	put_f64(w, tr->best_reward);
	put_f32s(w, tr->best.params, n);
	put_u32(w, rb->len);
	put_u32(w, rb->next);
	put_f32s(w, rb->state, (size_t)rb->len * rb->n_in);
	put_f32s(w, rb->next_state, (size_t)rb->len * rb->n_in);
	put_f32s(w, rb->reward, rb->len);
	put_bytes(w, rb->action, rb->len);
	for (uint32_t i = 0; i < tr->episodes_done; i++)
		put_f64(w, tr->episode_reward[i]);
	put_u32(w, (uint32_t)crc32(0L, w->data, (uInt)w->len));
}

int dqn_checkpoint_save(const struct dqn_trainer *tr, const char *path, struct reflex_err *err)
{
	struct wbuf w = { 0 };
	struct reflex_err ferr = { 0 };
	int ret;

	serialize(tr, &w);
	if (w.oom) {
		free(w.data);
		reflex_err_set_file(err, path, "out of memory serializing the checkpoint");
		return -ENOMEM;
	}
	ret = fileio_write_atomic(path, w.data, w.len, 0600, &ferr);
	if (ret)
		reflex_err_copy(err, &ferr);
	free(w.data);
	return ret;
}

struct rbuf {
	const uint8_t *data;
	size_t len, off;
	const char *name; /* for messages */
	struct reflex_err *err;
};

static void set_err_at(struct rbuf *r, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "NAME: byte AT: ..." */
static void set_err_at(struct rbuf *r, size_t at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(r->err, fmt, ap);
	va_end(ap);
	reflex_err_at_file(r->err, r->name);
	reflex_err_at_offset(r->err, (long long)at);
}

static int short_read(struct rbuf *r, const char *field)
{
	set_err_at(r, r->off, "truncated reading %s", field);
	return -EINVAL;
}

static int get_u32(struct rbuf *r, const char *field, uint32_t *v)
{
	if (r->len - r->off < 4)
		return short_read(r, field);
	*v = 0;
	for (int i = 0; i < 4; i++)
		*v |= (uint32_t)r->data[r->off + i] << (8 * i);
	r->off += 4;
	return 0;
}

static int get_u64(struct rbuf *r, const char *field, uint64_t *v)
{
	if (r->len - r->off < 8)
		return short_read(r, field);
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v |= (uint64_t)r->data[r->off + i] << (8 * i);
	r->off += 8;
	return 0;
}

static int bad_value(struct rbuf *r, size_t at, const char *field)
{
	set_err_at(r, at, "%s is not a finite number", field);
	return -EINVAL;
}

static int get_f32(struct rbuf *r, const char *field, float *f)
{
	size_t at = r->off;
	uint32_t v;
	int ret = get_u32(r, field, &v);

	if (ret)
		return ret;
	memcpy(f, &v, sizeof(*f));
	return isfinite(*f) ? 0 : bad_value(r, at, field);
}

static int get_f64(struct rbuf *r, const char *field, double *d)
{
	size_t at = r->off;
	uint64_t v;
	int ret = get_u64(r, field, &v);

	if (ret)
		return ret;
	memcpy(d, &v, sizeof(*d));
	return isfinite(*d) ? 0 : bad_value(r, at, field);
}

static int get_f32s(struct rbuf *r, const char *field, float *f, size_t n)
{
	if ((r->len - r->off) / 4 < n)
		return short_read(r, field);
	for (size_t i = 0; i < n; i++) {
		int ret = get_f32(r, field, &f[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static int mismatch(struct rbuf *r, size_t at, const char *what)
{
	set_err_at(r, at, "%s", what);
	return -EINVAL;
}

static int read_opts(struct rbuf *r, struct dqn_train_opts *o)
{
	uint32_t flag;
	size_t at;
	int ret = 0;

	ret = ret ?: get_u64(r, "seed", &o->seed);
	ret = ret ?: get_u32(r, "steps_per_episode", &o->steps_per_episode);
	ret = ret ?: get_u32(r, "hidden", &o->hidden);
	ret = ret ?: get_u32(r, "batch", &o->batch);
	ret = ret ?: get_u32(r, "replay_capacity", &o->replay_capacity);
	ret = ret ?: get_u32(r, "replay_warmup", &o->replay_warmup);
	ret = ret ?: get_u32(r, "target_sync", &o->target_sync);
	ret = ret ?: get_f32(r, "lr", &o->lr);
	ret = ret ?: get_f32(r, "gamma", &o->gamma);
	ret = ret ?: get_f32(r, "huber_delta", &o->huber_delta);
	ret = ret ?: get_f32(r, "advantage_alpha", &o->advantage_alpha);
	ret = ret ?: get_f32(r, "reward_floor", &o->reward_floor);
	ret = ret ?: get_f32(r, "weight_clip", &o->weight_clip);
	ret = ret ?: get_f32(r, "act_noise", &o->act_noise);
	ret = ret ?: get_u32(r, "validate_every", &o->validate_every);
	ret = ret ?: get_u32(r, "validate_scenarios", &o->validate_scenarios);
	ret = ret ?: get_f64(r, "eps_start", &o->eps_start);
	ret = ret ?: get_f64(r, "eps_end", &o->eps_end);
	ret = ret ?: get_f64(r, "eps_decay", &o->eps_decay);
	at = r->off;
	ret = ret ?: get_u32(r, "seed_features_only", &flag);
	if (ret)
		return ret;
	if (flag > 1)
		return mismatch(r, at, "seed_features_only must be 0 or 1");
	o->seed_features_only = flag;
	return 0;
}

static int read_state(struct rbuf *r, struct dqn_trainer *tr)
{
	struct dqn_replay *rb = &tr->replay;
	size_t n = tr->online.n_params, at;
	uint32_t n_in, n_out, len, next, has_best;
	int ret = 0;

	at = r->off;
	ret = ret ?: get_u32(r, "n_in", &n_in);
	ret = ret ?: get_u32(r, "n_out", &n_out);
	if (ret)
		return ret;
	if (n_in != tr->n_in || n_out != DQN_ACTIONS)
		return mismatch(r, at, "network shape does not match seed_features_only and the 6 actions");
	at = r->off;
	ret = ret ?: get_u32(r, "episodes_done", &tr->episodes_done);
	ret = ret ?: get_u64(r, "decisions", &tr->decisions);
	ret = ret ?: get_u64(r, "updates", &tr->updates);
	if (ret)
		return ret;
	if (tr->episodes_done > MAX_EPISODES ||
	    tr->decisions != (uint64_t)tr->episodes_done * tr->opts.steps_per_episode ||
	    tr->updates > tr->decisions)
		return mismatch(r, at, "episodes_done, decisions and updates are inconsistent");
	for (int i = 0; i < 4 && !ret; i++)
		ret = get_u64(r, "rng", &tr->rng.s[i]);
	ret = ret ?: get_f32s(r, "online network", tr->online.params, n);
	ret = ret ?: get_f32s(r, "target network", tr->target.params, n);
	ret = ret ?: get_u64(r, "adam step", &tr->adam.t);
	ret = ret ?: get_f32s(r, "adam first moment", tr->adam.m, n);
	ret = ret ?: get_f32s(r, "adam second moment", tr->adam.v, n);
	if (ret)
		return ret;
	if (tr->adam.t != tr->updates)
		return mismatch(r, r->off, "adam step differs from the update count");
	ret = get_f64(r, "act_max", &tr->act_max);
	if (ret)
		return ret;
	at = r->off;
	ret = ret ?: get_u32(r, "has_best", &has_best);
	ret = ret ?: get_u32(r, "best_episode", &tr->best_episode);
	ret = ret ?: get_f64(r, "best_reward", &tr->best_reward);
	ret = ret ?: get_f32s(r, "best network", tr->best.params, n);
	if (ret)
		return ret;
	if (has_best > 1 || tr->best_episode > tr->episodes_done || tr->act_max < 0)
		return mismatch(r, at, "has_best/best_episode/act_max are inconsistent");
	tr->has_best = has_best;
	at = r->off;
	ret = ret ?: get_u32(r, "replay length", &len);
	ret = ret ?: get_u32(r, "replay next", &next);
	if (ret)
		return ret;
	if (len > rb->capacity || next >= rb->capacity || (len < rb->capacity && next != len) ||
	    len > tr->decisions)
		return mismatch(r, at, "replay length/next do not fit replay_capacity");
	rb->len = len;
	rb->next = next;
	ret = ret ?: get_f32s(r, "replay states", rb->state, (size_t)len * rb->n_in);
	ret = ret ?: get_f32s(r, "replay next states", rb->next_state, (size_t)len * rb->n_in);
	ret = ret ?: get_f32s(r, "replay rewards", rb->reward, len);
	if (ret)
		return ret;
	if (r->len - r->off < len)
		return short_read(r, "replay actions");
	for (uint32_t i = 0; i < len; i++) {
		if (r->data[r->off + i] >= DQN_ACTIONS)
			return mismatch(r, r->off + i, "replay action is not one of the 6 actions");
		rb->action[i] = r->data[r->off + i];
	}
	r->off += len;
	return 0;
}

static int read_episode_rewards(struct rbuf *r, struct dqn_trainer *tr)
{
	uint32_t n = tr->episodes_done;

	if ((r->len - r->off) / 8 < n)
		return short_read(r, "episode rewards");
	tr->episode_reward = calloc(n ? n : 1, sizeof(double));
	if (!tr->episode_reward)
		return -ENOMEM;
	tr->episode_reward_cap = n ? n : 1;
	for (uint32_t i = 0; i < n; i++) {
		int ret = get_f64(r, "episode reward", &tr->episode_reward[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static int check_header(struct rbuf *r)
{
	uint32_t version, stored, computed;
	size_t body = r->len - 4;

	if (r->len < 12)
		return mismatch(r, 0, "too short for a DQN checkpoint (magic, version, CRC)");
	if (memcmp(r->data, CHECKPOINT_MAGIC, 4) != 0)
		return mismatch(r, 0, "bad magic (not a reflex DQN checkpoint)");
	r->off = 4;
	get_u32(r, "version", &version);
	if (version != DQN_CHECKPOINT_VERSION) {
		set_err_at(r, 4, "checkpoint version %u is not supported (this build reads %u)", version, DQN_CHECKPOINT_VERSION);
		return -EINVAL;
	}
	stored = (uint32_t)r->data[body] | (uint32_t)r->data[body + 1] << 8 |
		 (uint32_t)r->data[body + 2] << 16 | (uint32_t)r->data[body + 3] << 24;
	computed = (uint32_t)crc32(0L, r->data, (uInt)body);
	if (stored != computed) {
		set_err_at(r, body, "CRC mismatch (stored 0x%08x, computed 0x%08x): file is corrupt", stored,
			   computed);
		return -EINVAL;
	}
	r->len = body; /* the fields end where the CRC starts */
	return 0;
}

static int load_buffer(const void *data, size_t len, const char *name, const struct dqn_train_opts *opts,
		       struct dqn_trainer **out, struct reflex_err *err)
{
	struct rbuf r = { .data = data, .len = len, .name = name, .err = err };
	struct dqn_train_opts o;
	struct dqn_trainer *tr = NULL;
	struct reflex_err why = { 0 };
	size_t at;
	int ret;

	*out = NULL;
	ret = check_header(&r);
	if (ret)
		return ret;
	if (opts)
		o = *opts;
	else
		dqn_train_opts_default(&o);
	at = r.off;
	ret = read_opts(&r, &o);
	if (ret)
		return ret;
	if (dqn_check_train_opts(&o, &why))
		return mismatch(&r, at, why.what);
	ret = dqn_trainer_new(&o, &tr, err);
	if (ret)
		return ret;
	ret = read_state(&r, tr);
	if (!ret)
		ret = read_episode_rewards(&r, tr);
	if (!ret && r.off != r.len)
		ret = mismatch(&r, r.off, "unexpected bytes after the last field");
	if (ret) {
		if (ret == -ENOMEM)
			reflex_err_set_file(err, name, "out of memory");
		dqn_trainer_free(tr);
		return ret;
	}
	*out = tr;
	return 0;
}

int dqn_checkpoint_load_buffer(const void *data, size_t len, const struct dqn_train_opts *opts,
			       struct dqn_trainer **out, struct reflex_err *err)
{
	return load_buffer(data, len, "checkpoint", opts, out, err);
}

int dqn_checkpoint_load(const char *path, const struct dqn_train_opts *opts, struct dqn_trainer **out,
			struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	char *data = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = fileio_read_bounded(path, (size_t)1 << 31, &data, &len, &ferr);
	if (ret) {
		reflex_err_copy(err, &ferr);
		return ret;
	}
	ret = load_buffer(data, len, path, opts, out, err);
	free(data);
	return ret;
}
