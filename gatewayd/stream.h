/*
 * Streamed responses (POST /v3/watch, /v3/lease/keepalive): a chunked reply
 * of `{"result":{...}}\n` messages, sent in the order the client's requests
 * and storaged's answers call for. A message that still waits for storaged
 * (the created of a watch, a revision to put in a header, a keepalive's
 * answer) holds back those behind it; everything else goes out at once.
 */
#ifndef ETCD_GATEWAYD_STREAM_H
#define ETCD_GATEWAYD_STREAM_H

#include <stdint.h>
#include <sys/queue.h>

#include "gw.h"
#include "jbuf.h"
#include "rpc.pb-c.h"

enum wkind { WS_WATCH, WS_KEEPALIVE };

/* What a queued message still waits for. */
enum wwait {
	WM_READY,   /* text is the chunk to send */
	WM_CREATED, /* the created hit of a watch (struct watch.created) */
	WM_QUERY,   /* the MSG_RESULT of query qid (gw->wq) */
};

/* What a WM_QUERY message becomes once its result is in. */
enum wq_what {
	WQ_PROGRESS, /* {header,"watch_id":"-1"} */
	WQ_CANCELED, /* {header,watch_id,"canceled":true} */
	WQ_REFUSED,  /* {header,"watch_id":"-1",created,canceled,cancel_reason} */
	WQ_KEEPALIVE /* {header,ID,TTL} */
};

struct wstream;

struct wmsg {
	STAILQ_ENTRY(wmsg) q;
	struct wstream *ws;
	enum wwait wait;
	enum wq_what what;
	uint64_t qid;
	int64_t id;          /* watch_id or lease ID the message is about */
	const char *reason;  /* WQ_REFUSED: static cancel_reason */
	char *text;          /* WM_READY: the chunk, malloc'd */
	size_t len;
	int last;            /* an error that ends the stream */
};

STAILQ_HEAD(wmsgq, wmsg);

enum wstate {
	W_CREATING, /* sent to storaged, created hit not back yet */
	W_ACTIVE,   /* registered at storaged as watcher */
	W_PAUSED,   /* cancelled at storaged while the client catches up */
};

#define WF_NOPUT 1
#define WF_NODELETE 2

/* One watch of a stream. */
struct watch {
	struct wstream *ws;
	LIST_ENTRY(watch) link;
	uint64_t watcher;     /* id at storaged (gw->watchers), 0 if none */
	int64_t watch_id;     /* the client's */
	enum wstate state;
	int dead;             /* cancelled by the client while creating */
	int resumed;          /* registered again: its created is not shown */
	struct wmsg *created; /* the queued created message, until filled */
	int64_t next_rev;     /* the first revision the client has not seen;
			       * 0: "now", until the created hit says when */
	/* The request, to register the watch again. */
	ProtobufCBinaryData key, range_end; /* malloc'd */
	int64_t start_rev;
	unsigned filters;     /* WF_* */
	int prev_kv, progress_notify, fragment;
};

struct wstream {
	struct gw *gw;
	enum wkind kind;
	struct evhttp_request *req; /* NULL once the client is gone */
	struct conn *conn;
	int started;        /* status and headers sent */
	int grpc_md;        /* with Grpc-Metadata-Content-Type */
	int body_done;      /* keepalive: end once out is empty */
	int paused;         /* watch: output past GW_STREAM_HIGH */
	int hold;           /* set while a body is being read: send later */
	int armed;          /* evhttp runs on_drained (see send_text) */
	struct wmsgq out;   /* messages not yet handed to evhttp */
	struct evbuffer *buf; /* hands one message at a time to evhttp */
	size_t n_out;
	LIST_ENTRY(wstream) link;
	/* Watch streams. */
	LIST_HEAD(, watch) watches;
	struct u64map ids;  /* watch_id (as u64) -> struct watch */
	int64_t next_id;    /* etcd's AutoWatchID counter */
};

/* stream.c */
struct wstream *stream_new(struct gw *gw, enum wkind kind,
			   struct evhttp_request *req, struct conn *c);
/* Queues a ready message (text taken, malloc'd) and sends what it can. */
void stream_push(struct wstream *ws, char *text, size_t len);
/* Queues a message waiting for something; NULL on no memory or limit. */
struct wmsg *stream_push_wait(struct wstream *ws, enum wwait wait);
/* Fills m with text (taken) and sends what it can. */
void stream_fill(struct wmsg *m, char *text, size_t len);
/* Drops m (its answer will never come) and sends what it can. */
void stream_drop(struct wmsg *m);
/*
 * Queues a message waiting for the answer to query q (sent here, borrowed),
 * made into what with id. A failure to send resolves it with the last known
 * revision.
 */
void stream_push_query(struct wstream *ws, Ipc__Query *q, enum wq_what what,
		       int64_t id, const char *reason);
/* Sends what is ready at the head of the queue. */
void stream_flush(struct wstream *ws);
/* Output bytes not yet written to the client's socket. */
size_t stream_backlog(const struct wstream *ws);

/*
 * Appends `{"result":` + wr + `}` + "\n" with wr's events given as already
 * encoded JSON (n of them, borrowed), so each event is encoded once for all
 * watches that get it.
 */
void stream_encode_result(struct jbuf *b, const ProtobufCMessage *wr,
			  const struct jbuf *const *events, size_t n);
/* A WatchResponse with a filled header at rev. */
void stream_watch_response(struct gw *gw, Etcdserverpb__WatchResponse *wr,
			   Etcdserverpb__ResponseHeader *h, int64_t rev);

/* watch.c */
void watch_stream_free(struct wstream *ws);
/* The stream's output went past its high mark / back below the low one. */
void watch_pause(struct wstream *ws);
void watch_resume(struct wstream *ws);
/* w is over: unlink and free it. */
void watch_free(struct gw *gw, struct watch *w);
/* Stops w at storaged (if registered) and forgets its watcher id. */
void watch_unregister(struct gw *gw, struct watch *w);

#endif
