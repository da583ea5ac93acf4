/*
 * etcd discovery (--discovery URL): etcd 3.4's v2discovery client. This
 * member registers under the token directory of a discovery cluster, waits
 * until _config/size members are there and hands the initial cluster to
 * the supervisor. discovery.c runs the protocol on the worker's event loop,
 * discovery_http.c is its HTTP/1.1 client (direct, through an http proxy,
 * over TLS), discovery_proto.c the pure parts: URLs, request lines, the
 * JSON answers, the member list, the backoff.
 */
#ifndef ETCD_DISCOVERYD_DISCOVERY_H
#define ETCD_DISCOVERYD_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct event_base;
struct worker;

/* etcd's client.DefaultRequestTimeout: GETs of size and directory, PUT. */
#define DISC_REQUEST_TIMEOUT_S 5
/* Go's dialer timeout (etcd's transport.NewTransport(..., 30s)). */
#define DISC_DIAL_TIMEOUT_S 30
/* net/http's TLSHandshakeTimeout in etcd's transport. */
#define DISC_TLS_TIMEOUT_S 10
/* etcd's backoff: 2^retries seconds, the exponent capped here. */
#define DISC_MAX_BACKOFF_EXP 8
/* A response head or body larger than these is not a discovery answer. */
#define DISC_MAX_HEAD (64u << 10)
#define DISC_MAX_BODY (8u << 20)
/* The largest _config/size we accept: every member is a peer of the
 * cluster we bootstrap (common/memberid.h's limit on a cluster). */
#define DISC_MAX_SIZE 128

/* A URL split as etcd's client uses it. */
struct disc_url {
	char *scheme;   /* "http" or "https" */
	char *hostport; /* the authority as given: Host header, absolute form */
	char *host;     /* without brackets, for the connection and TLS */
	uint16_t port;  /* given, or the scheme's */
	char *endpoint; /* scheme://hostport: etcd's d.url in its log lines */
	char *path;     /* the token directory's path, cleaned ("" for none) */
};

/* discovery_proto.c */

/* url: a discovery URL (http or https). 0, or -EINVAL; *ret filled. */
int disc_url_parse(const char *url, struct disc_url *ret);
/* --discovery-proxy as etcd's newProxyFunc reads it ("http://" is put in
 * front of a value without an http scheme). *ret_shown (malloc'd) is what
 * etcd logs. 0, -EINVAL, -EPROTONOSUPPORT (not http), -ENOMEM. */
int disc_proxy_parse(const char *proxy, struct disc_url *ret,
		     char **ret_shown);
void disc_url_clear(struct disc_url *u);

/*
 * One request as Go's transport writes it: origin form, or absolute form
 * when sent to an http proxy. body (form-encoded) for PUT, else NULL.
 * *ret malloc'd. 0 or -ENOMEM.
 */
int disc_request_format(const struct disc_url *target, bool via_proxy,
			const char *method, const char *path_query,
			const char *body, char **ret);
/* The CONNECT request for a TLS target through a proxy. */
int disc_connect_format(const struct disc_url *target, char **ret);

/* url.QueryEscape of s, appended to a malloc'd "key=" string. */
int disc_form_value(const char *key, const char *s, char **ret);
/* The registered value: "name=url" for each URL, sorted, joined by ","
 * (etcd's URLsMap.String()). */
int disc_self_value(const char *name, char *const *urls, size_t n,
		    char **ret);

/* Go's strconv.Atoi for the size key; 0 or -EINVAL. */
int disc_parse_size(const char *s, long *ret);
/* Seconds to wait before retry number retries (1, 2, ...): 2, 4, ... 256. */
unsigned disc_backoff_s(unsigned retries);
/* Go's time.Duration String() of whole seconds: "2s", "1m4s", "4m16s". */
void disc_go_duration(unsigned s, char *buf, size_t len);

/* A v2 node as the discovery client reads it. */
struct disc_node {
	char *key;
	char *value; /* "" when absent (a directory, a delete event) */
	uint64_t created, modified;
};
void disc_nodes_free(struct disc_node *v, size_t n);

/* {"action":...,"node":{...}}: the node. 0, -EINVAL (not etcd's JSON). */
int disc_parse_node(const char *body, size_t len, struct disc_node *ret);
/* A directory GET: the node's children (one level), in the answer's order. */
int disc_parse_dir(const char *body, size_t len, struct disc_node **ret,
		   size_t *ret_n);
/* An error answer, etcd's client.Error text: "100: Key not found (cause)
 * [7]"; *ret_code its errorCode. -EINVAL if the body is not one. */
int disc_parse_error(const char *body, size_t len, int *ret_code, char *buf,
		     size_t buflen);

/* path.Base of a key. Points into key. */
const char *disc_key_base(const char *key, size_t *ret_len);

/*
 * checkCluster's part after its GETs: drops the _config entry, sorts by
 * createdIndex and looks for self (the base name of this member's key).
 * Returns 0, or -ENOSPC (etcd's ErrFullCluster) with *n cut to size: self
 * is not among the first size nodes. Dropped nodes are freed.
 */
int disc_check_nodes(struct disc_node *v, size_t *n, long size,
		     const char *self);

/* One member of the discovered cluster. */
struct disc_member {
	char *name;
	char **urls; /* sorted */
	size_t n;
};
struct disc_cluster {
	struct disc_member *m; /* in the order the names first appear */
	size_t n;
	char *joined; /* the values joined with "," (etcd's cluster string) */
};
/*
 * nodesToCluster: the cluster of the values; -EINVAL if a value is not
 * name=URL pairs (etcd's ErrInvalidURL), -ENOTUNIQ if the names are not
 * size many (ErrDuplicateName), -ENOMEM.
 */
int disc_cluster_new(char *const *values, size_t n, long size,
		     struct disc_cluster **ret);
void disc_cluster_free(struct disc_cluster *c);
/* etcd's checkDuplicateURL: 1 with *ret_str (URLsMap.String(), malloc'd)
 * when a URL appears twice, 0 when none does, -ENOMEM. */
int disc_cluster_dup_url(const struct disc_cluster *c, char **ret_str);

/* discovery_http.c: one connection at a time to the discovery endpoint. */

struct dhttp;

struct dhttp_resp {
	int status;
	bool has_index;
	uint64_t etcd_index; /* X-Etcd-Index */
	const char *index_raw; /* the header as sent, when it did not parse */
	const char *body;    /* borrowed for the callback's duration */
	size_t len;
};

/*
 * The outcome of one request: err 0 and r (any status), or no response:
 * -ETIMEDOUT (the request's own deadline passed: Go's "context deadline
 * exceeded"), -EMSGSIZE (answer over the limits), -EIO (a transport error,
 * why worded as Go's net/http would).
 */
typedef void (*dhttp_cb)(void *arg, int err, const struct dhttp_resp *r,
			 const char *why);

/* target and proxy (NULL: direct) are borrowed; tls for an https target. */
struct dhttp *dhttp_new(struct event_base *base, const struct disc_url *target,
			const struct disc_url *proxy, SSL_CTX *tls);
/*
 * Sends one request (none may be in flight). timeout_s 0: no deadline
 * (a watch). The callback runs from the event loop, never from here.
 * 0 or -ENOMEM.
 */
int dhttp_request(struct dhttp *h, const char *method, const char *path_query,
		  const char *form_body, unsigned timeout_s, dhttp_cb cb,
		  void *arg);
/* Closes the connection and drops a request in flight (no callback). */
void dhttp_free(struct dhttp *h);

/* discovery.c: starts the protocol; MSG_JOIN_RESULT follows. 0 or -errno. */
int discovery_start(struct worker *w);
void discovery_done(struct worker *w);

#endif
