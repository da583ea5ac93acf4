/*
 * What srv.c (etcd's rules) and srv_dns.c (the DNS lookups) share inside
 * discoveryd; srv.h is the interface.
 */
#ifndef ETCD_DISCOVERYD_SRV_INT_H
#define ETCD_DISCOVERYD_SRV_INT_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>

#include "srv.h"

/* An SRV record, as Go's net.SRV. */
struct rec {
	uint16_t prio, weight, port;
	char *target; /* with its trailing dot */
};

/* The resolved addresses of one host (numeric strings, inet_ntop form). */
struct addrs {
	char v[SRV_MAX_ADDRS][INET6_ADDRSTRLEN];
	size_t n;
};

void srv_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Addresses of host: itself when numeric, else its A then AAAA records. */
int srv_resolve(struct srv_resolver *r, const char *host, struct addrs *ret,
	    char *err, size_t errlen);
/* The SRV records of _service._tcp.domain, in Go's order (*ret owned:
 * recs_free). */
int srv_lookup(struct srv_resolver *r, const char *service, const char *domain,
	       struct rec **ret, size_t *ret_n, char *err, size_t errlen);
void srv_recs_free(struct rec *v, size_t n);

#endif
