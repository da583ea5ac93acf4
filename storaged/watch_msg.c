/*
 * The watch hub's messages: events encoded once each, one hit per watcher
 * that lists the indexes of its events, sent as one ipc.WatchEvents.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "watch_int.h"

void whub_msg_init(struct whub_msg *mm)
{
	memset(mm, 0, sizeof(*mm));
	arena_init(&mm->a, 0);
}

void whub_msg_done(struct whub_msg *mm)
{
	arena_done(&mm->a);
	free(mm->ev);
	free(mm->hits);
	memset(mm, 0, sizeof(*mm));
}

void whub_msg_reset(struct whub *h, struct whub_msg *mm)
{
	arena_clear(&mm->a);
	mm->nev = mm->nhits = 0;
	/* Hits of older messages are recognised by their generation. */
	mm->gen = ++h->gen;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*v, c * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

int whub_msg_event(struct whub_msg *mm, Mvccpb__Event *ev)
{
	if (grow((void **)&mm->ev, &mm->capev, mm->nev, sizeof(*mm->ev)) < 0)
		return -ENOMEM;
	mm->ev[mm->nev] = ev;
	return (int)mm->nev++;
}

Ipc__WatchHit *whub_msg_hit_of(struct whub_msg *mm, struct watcher *w)
{
	if (w->hit_gen == mm->gen && w->hit)
		return w->hit;
	if (grow((void **)&mm->hits, &mm->caphits, mm->nhits,
		 sizeof(*mm->hits)) < 0)
		return NULL;
	Ipc__WatchHit *hit = ARENA_NEW(&mm->a, Ipc__WatchHit,
				       IPC__WATCH_HIT__INIT);
	hit->watcher = w->id;
	mm->hits[mm->nhits++] = hit;
	w->hit = hit;
	w->hit_gen = mm->gen;
	w->hit_cap = 0;
	return hit;
}

int whub_msg_hit(struct whub *h, struct whub_msg *mm, struct watcher *w, uint32_t ev)
{
	(void)h;
	Ipc__WatchHit *hit = whub_msg_hit_of(mm, w);
	if (!hit)
		return -ENOMEM;
	if (hit->n_events == w->hit_cap) {
		/* Most hits hold one event: start small, double in the arena. */
		uint32_t cap = w->hit_cap ? w->hit_cap * 2 : 2;
		uint32_t *e = arena_alloc(&mm->a, cap * sizeof(*e));
		if (hit->n_events)
			memcpy(e, hit->events, hit->n_events * sizeof(*e));
		hit->events = e;
		w->hit_cap = cap;
	}
	hit->events[hit->n_events++] = ev;
	w->active = 1;
	return 0;
}

void whub_msg_send(struct whub *h, struct whub_msg *mm, int64_t rev)
{
	if (!mm->nhits)
		return;
	Ipc__WatchEvents msg = IPC__WATCH_EVENTS__INIT;
	msg.revision = rev;
	msg.events = mm->ev;
	msg.n_events = mm->nev;
	msg.hits = mm->hits;
	msg.n_hits = mm->nhits;
	int r = h->send(h->arg, &msg);
	if (r == 0) {
		for (size_t i = 0; i < mm->nhits; i++)
			h->events += mm->hits[i]->n_events;
	} else if (r == -EMSGSIZE) {
		/*
		 * One revision's events beyond a frame (a delete of millions
		 * of keys): the watchers that get them cannot be served, so
		 * they are canceled with a reason, as a gRPC watch would fail
		 * past its message limit.
		 */
		Ipc__WatchHit **hits = mm->hits;
		size_t n = mm->nhits;
		/* Cancels below must not reorder the hits being walked. */
		mm->nhits = 0;
		for (size_t i = 0; i < n; i++) {
			Ipc__WatchHit c = IPC__WATCH_HIT__INIT, *cp = &c;
			c.watcher = hits[i]->watcher;
			c.canceled = 1;
			c.cancel_reason = "etcdserver: watch response is too large";
			Ipc__WatchEvents one = IPC__WATCH_EVENTS__INIT;
			one.revision = rev;
			one.hits = &cp;
			one.n_hits = 1;
			h->send(h->arg, &one);
			uint64_t id = c.watcher;
			whub_cancel(h, &id, 1);
		}
	}
	/* -ENOTCONN: gatewayd is gone and the hub is about to be cleared. */
	mm->nhits = 0;
}
