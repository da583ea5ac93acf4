/* Binding the client and peer listeners (only the supervisor binds). */
#ifndef ETCD_SUPERVISOR_LISTEN_H
#define ETCD_SUPERVISOR_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "url.h"

/* Go listens with the kernel's net.core.somaxconn (4096 by default); the
 * kernel caps this at that value. A burst of connections (2,000 clients at
 * a gateway) must not overflow it into SYN retries. */
#define LISTEN_BACKLOG 4096

struct listener {
	int fd;    /* owned: bound, listening, non-blocking, close-on-exec */
	char *url; /* owned */
	bool peer;
};

/*
 * Binds u (http, host an IP or localhost = 127.0.0.1) with SO_REUSEADDR.
 * On failure returns -errno and writes Go's text to err, e.g.
 * "listen tcp 127.0.0.1:2379: bind: address already in use".
 */
int listener_open(const struct url *u, bool peer, struct listener *ret,
		  char *err, size_t errlen);
void listener_close(struct listener *l);

struct config;
/*
 * Binds every --listen-peer-urls URL (unless clients_only), then every
 * --listen-client-urls one, into ls (room for 2 * URL_LIST_MAX). *n counts
 * those bound, also on failure (the caller closes them). 0, or -errno with
 * Go's text in err.
 */
int listeners_open(const struct config *c, bool clients_only,
		   struct listener *ls, size_t *n, char *err, size_t errlen);

#endif
