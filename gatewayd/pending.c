/*
 * Pending requests: created when a request is accepted, found by ID when
 * raftd or storaged answers, expired by deadline. Every request has exactly
 * one reply: an answer, an error, or the timeout.
 */
#include <stdlib.h>
#include <time.h>

#include "gw.h"

uint64_t gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct pending *pending_new(struct gw *gw, struct evhttp_request *req,
			    struct conn *c, enum pkind kind, uint64_t id)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (u64map_put(&gw->pend, id, p) < 0) {
		free(p);
		return NULL;
	}
	p->id = id;
	p->kind = kind;
	p->req = req;
	p->conn = c;
	if (c)
		c->pending = p;
	/* The request body may hold a 2 MiB value: its decoded form must fit
	 * several times that, never more. */
	arena_init(&p->arena, 4 * (gw->grpc_max + 4096));
	if (kind == PK_HEALTH) {
		p->deadline_ms = gw_now_ms() + GW_HEALTH_TIMEOUT_MS;
		p->dq = &gw->dq_health;
	} else {
		p->deadline_ms = gw_now_ms() + gw->timeout_ms;
		p->dq = &gw->dq_req;
	}
	TAILQ_INSERT_TAIL(p->dq, p, dq_link);
	return p;
}

void pending_no_deadline(struct gw *gw, struct pending *p)
{
	TAILQ_REMOVE(p->dq, p, dq_link);
	p->dq = &gw->dq_none;
	p->deadline_ms = UINT64_MAX;
	TAILQ_INSERT_TAIL(p->dq, p, dq_link);
}

struct evhttp_request *pending_take_req(struct pending *p)
{
	struct evhttp_request *req = p->req;
	p->req = NULL;
	if (p->conn) {
		p->conn->pending = NULL;
		p->conn = NULL;
	}
	return req;
}

void pending_free(struct gw *gw, struct pending *p)
{
	if (!p)
		return;
	u64map_del(&gw->pend, p->id);
	TAILQ_REMOVE(p->dq, p, dq_link);
	if (p->in_ri == 1)
		TAILQ_REMOVE(&gw->ri_wait, p, rq);
	else if (p->in_ri == 2)
		TAILQ_REMOVE(&gw->ri_round, p, rq);
	else if (p->in_ri == 3)
		TAILQ_REMOVE(&gw->m_wait, p, rq);
	if (p->conn)
		p->conn->pending = NULL;
	if (p->gone_ev)
		event_free(p->gone_ev);
	arena_done(&p->arena);
	free(p);
}

void pending_fail(struct gw *gw, struct pending *p, uint32_t code,
		  const char *msg)
{
	if (p->kind == PK_V2 || p->kind == PK_V2_NEW) {
		/* etcd's v2 API wraps what is not a store error in 300. */
		pending_v2_fail(gw, p, 300, msg);
		return;
	}
	if (p->req) {
		if (p->kind == PK_HEALTH)
			http_reply_health(p->req, 0);
		else
			http_reply_error(p->req, code, msg);
	}
	pending_free(gw, p);
}

void pending_fail_if(struct gw *gw, int (*pred)(const struct pending *),
		     uint32_t code, const char *msg)
{
	struct pqueue *qs[] = { &gw->dq_req, &gw->dq_health, &gw->dq_none };
	for (int i = 0; i < 3; i++) {
		struct pending *p = TAILQ_FIRST(qs[i]), *next;
		for (; p; p = next) {
			next = TAILQ_NEXT(p, dq_link);
			if (pred(p))
				pending_fail(gw, p, code, msg);
		}
	}
}

void pending_expire(struct gw *gw, uint64_t now_ms)
{
	struct pqueue *qs[] = { &gw->dq_req, &gw->dq_health };
	for (int i = 0; i < 2; i++) {
		struct pending *p;
		/* Each queue holds one timeout: its head expires first. */
		while ((p = TAILQ_FIRST(qs[i])) && p->deadline_ms <= now_ms)
			pending_fail(gw, p, 14, "etcdserver: request timed out");
	}
}
