/* What the watch hub's files share (watch.c, watch_notify.c, watch_sync.c). */
#ifndef STORAGED_WATCH_INT_H
#define STORAGED_WATCH_INT_H

#include "arena.h"
#include "keyindex.h"
#include "smap.h"
#include "watch.h"

/* A watched key range, as etcd's watch server reads a create request. */
enum wkind {
	WK_ONE,  /* the key alone */
	WK_SPAN, /* [key, end) */
	WK_FROM, /* every key >= key (range_end "\0") */
};

enum wstate { W_SYNCED, W_UNSYNCED, W_ROUND };

struct wgroup;

struct watcher {
	struct smap_node hn;      /* in whub.by_id */
	uint64_t id;              /* gatewayd's */
	int64_t minrev;           /* the first revision it still needs */
	enum wstate state;
	unsigned prev_kv : 1, noput : 1, nodelete : 1, progress_notify : 1;
	unsigned want_progress : 1; /* asked while unsynced */
	unsigned active : 1;        /* got events since the last notify tick */
	struct wgroup *g;         /* its range, shared with same-range watchers */
	struct watcher *prev, *next; /* in g's synced list, or whub.unsynced */
	/* The hit being built for the message of generation hit_gen. */
	uint64_t hit_gen;
	Ipc__WatchHit *hit;
	uint32_t hit_cap;
	uint32_t slot;            /* in the round, while W_ROUND */
};

/* Watchers of one range: a key lookup finds every single-key watcher of a
 * key at once, and ranges are tested once per distinct range. */
struct wgroup {
	struct smap_node hn;      /* in whub.groups */
	enum wkind kind;
	uint32_t klen, elen;
	uint8_t *key, *end;       /* in the same allocation */
	size_t refs;              /* watchers of this range, any state */
	struct watcher *synced;   /* list head */
	struct wgroup *rprev, *rnext; /* in whub.ranges (not WK_ONE) */
};

/* An unsynced catch-up in progress. */
struct wround {
	int active;
	struct watcher **w;       /* NULL slots: canceled meanwhile */
	size_t n, cap;
	int64_t pos_main;         /* the next stored revision to read */
	uint32_t pos_sub;
	int64_t cur_main;         /* the revision of the last record read */
	size_t bytes;             /* of the history held */
};

/* A message being built: events (each once) and hits. */
struct whub_msg {
	struct arena a;
	uint64_t gen;             /* watchers' hits of this message */
	Mvccpb__Event **ev;
	size_t nev, capev;
	Ipc__WatchHit **hits;
	size_t nhits, caphits;
};

struct whub {
	struct mvcc *m;
	whub_send_fn *send;
	void *arg;
	struct smap by_id;
	struct smap groups;
	struct wgroup *ranges;
	struct watcher *unsynced; /* waiting for a round */
	size_t nunsynced, nsynced;
	struct wround round;
	struct whub_msg live;         /* the apply path's */
	struct whub_msg hist;         /* the round's */
	uint64_t gen;
	uint64_t events;
};

void whub_msg_init(struct whub_msg *mm);
void whub_msg_done(struct whub_msg *mm);
/* Starts a new message (the previous one's memory is reused). */
void whub_msg_reset(struct whub *h, struct whub_msg *mm);
/* Appends an event; its index, or -ENOMEM. */
int whub_msg_event(struct whub_msg *mm, Mvccpb__Event *ev);
/* Adds event index ev to w's hit in mm. 0 or -ENOMEM. */
int whub_msg_hit(struct whub *h, struct whub_msg *mm, struct watcher *w, uint32_t ev);
/* w's hit in mm, made if needed (for flags); NULL on no memory. */
Ipc__WatchHit *whub_msg_hit_of(struct whub_msg *mm, struct watcher *w);
/*
 * Sends mm at revision rev if it has hits; counts the events delivered. A
 * message too large for a frame cancels its watchers instead.
 */
void whub_msg_send(struct whub *h, struct whub_msg *mm, int64_t rev);

/* The hash of a range in whub.groups. */
uint64_t whub_group_hash(enum wkind kind, const uint8_t *key, size_t klen,
		     const uint8_t *end, size_t elen);
/* Whether key is in g's range. */
int whub_group_has(const struct wgroup *g, const uint8_t *key, size_t klen);
/* Moves w to the synced group, wanting revisions from minrev. */
void whub_set_synced(struct whub *h, struct watcher *w, int64_t minrev);
/* Takes the first unsynced watcher out of the list (NULL if none); the
 * caller puts it in the round. */
struct watcher *whub_pop_unsynced(struct whub *h);
/* Removes and frees w (from any group, the round included). */
void whub_drop(struct whub *h, struct watcher *w);
/* Sends w a hit {canceled, compact_revision} and drops it. */
void whub_compacted(struct whub *h, struct watcher *w, int64_t compact_rev);
/* Whether w wants an event of this kind (its filters). */
static inline int watcher_wants(const struct watcher *w, int del)
{
	return del ? !w->nodelete : !w->noput;
}

#endif
