/*
 * DNS SRV discovery (--discovery-srv, --discovery-srv-name) with ldns: the
 * initial cluster from _etcd-server[-ssl] records (etcd's pkg/srv
 * GetCluster) and the gateway's endpoints from _etcd-client[-ssl] records
 * (GetClient). Blocking: discoveryd runs it once, before anything else.
 */
#ifndef ETCD_DISCOVERYD_SRV_H
#define ETCD_DISCOVERYD_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each DNS query waits this long for an answer... */
#define SRV_QUERY_TIMEOUT_S 2
/* ...and is sent this many times (per nameserver) before it fails. */
#define SRV_QUERY_TRIES 3
/* SRV records we read per name, and addresses per host: anything past these
 * is not a cluster we could bootstrap. */
#define SRV_MAX_RECORDS 256
#define SRV_MAX_ADDRS 32
/* Room for etcd's longest message (two lookup errors, host names). */
#define SRV_ERR_MAX 1024

struct srv_resolver;

/*
 * The resolver every lookup goes through. conf (borrowed):
 *   NULL or ""         the system's: /etc/hosts first (as Go reads it
 *                      for etcd), then /etc/resolv.conf's nameservers;
 *   contains a '/'     a resolv.conf-format file (split DNS, tests);
 *   otherwise          one nameserver: "IP", "IP:port", "[IPv6]:port".
 * 0, -EINVAL (bad address), -ENOENT (file unreadable, no nameserver) or
 * -ENOMEM, with the reason in err.
 */
int srv_resolver_new(const char *conf, struct srv_resolver **ret, char *err,
		     size_t errlen);
struct srv_resolver *srv_resolver_free(struct srv_resolver *r);

/* One --initial-cluster entry found in the SRV records. */
struct srv_member {
	char *name; /* this member's --name, or "0", "1", ... in SRV order */
	char *url;  /* scheme://<target without its dot>:<port> */
	char *log;  /* "got bootstrap from DNS for etcd-server at name=url",
		     * the line etcd logs (level N, "embed: ") per member */
};

struct srv_cluster {
	struct srv_member *members; /* owned; a name may repeat (one member,
				     * several URLs), as in --initial-cluster */
	size_t n;
	char *initial_cluster; /* "name=url,..." as --initial-cluster */
	/* The records were _etcd-server-ssl: https peers. Without
	 * --peer-trusted-ca-file etcd then sets the peer TLS ServerName to
	 * the SRV domain (the SAN rule of the guide). */
	bool tls;
};

/*
 * etcd's SRV bootstrap of a member. domain: --discovery-srv; srv_name:
 * --discovery-srv-name or NULL/""; self_name: --name; apurls:
 * --initial-advertise-peer-urls (host names are resolved through r).
 * _etcd-server-ssl[-S]._tcp.D is looked up first; when it yields members
 * they are the cluster (https), else _etcd-server[-S]._tcp.D (http) is.
 * The record whose target resolves to one of the advertised addresses and
 * port is named self_name; a scheme differing from the advertised one is
 * etcd's "scheme mismatch" error.
 * 0 with *ret (free with srv_cluster_free); -ENOENT with etcd's message in
 * err (the caller prefixes it as etcd does: "couldn't resolve during SRV
 * discovery (...)" and "error setting up initial cluster: ..."); -EINVAL
 * for an advertised URL without host or port; -ENOMEM.
 */
int srv_server_cluster(struct srv_resolver *r, const char *domain,
		       const char *srv_name, const char *self_name,
		       const char *const *apurls, size_t napurls,
		       struct srv_cluster **ret, char *err, size_t errlen);
struct srv_cluster *srv_cluster_free(struct srv_cluster *c);

/* One gateway endpoint. */
struct srv_endpoint {
	char *host;    /* the record's target, trailing dot kept as etcd's
			* gateway keeps it (infra0.example.com.) */
	uint16_t port;
	bool tls;      /* from _etcd-client-ssl: speak TLS to it */
	char *url;     /* etcd's endpoint string, https://infra0.example.com.:2379 */
};

struct srv_endpoints {
	struct srv_endpoint *v; /* owned; -ssl records first, then plain */
	size_t n;
};

/*
 * etcd's GetClient for the gateway: both _etcd-client-ssl[-S]._tcp.D and
 * _etcd-client[-S]._tcp.D are looked up; it fails only when both lookups
 * fail ("dns lookup errors: <ssl error> and <plain error>", -ENOENT).
 */
int srv_client_endpoints(struct srv_resolver *r, const char *domain,
			 const char *srv_name, struct srv_endpoints **ret,
			 char *err, size_t errlen);
struct srv_endpoints *srv_endpoints_free(struct srv_endpoints *e);

#endif
