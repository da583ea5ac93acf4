/*
 * gatewayd's entry points beyond gatewayd_main (common/proc.h): its worker
 * operations and state, so that tests can run the real gatewayd inside
 * their own event loop with socketpairs for raftd and storaged.
 */
#ifndef ETCD_GATEWAYD_GATEWAYD_H
#define ETCD_GATEWAYD_GATEWAYD_H

#include "worker.h"

struct gw;

extern const struct worker_ops gatewayd_ops;

/* Sets gw up from w->cfg (w borrowed, gw caller-owned). 0 or -ENOMEM. */
int gw_init(struct gw *gw, struct worker *w);
/* Fails what is pending, closes the listeners. */
void gw_done(struct gw *gw);

#endif
