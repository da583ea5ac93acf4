/*
 * URLs as etcd's flags take them (Go's net/url plus etcd's types.NewURLs):
 * scheme http, https, unix or unixs, an authority of the form host:port, no
 * path. Error texts are etcd's, so a bad flag reads as it does with etcd.
 */
#ifndef ETCD_SUPERVISOR_URL_H
#define ETCD_SUPERVISOR_URL_H

#include <stdbool.h>
#include <stddef.h>

/* A list flag takes at most this many URLs. */
#define URL_LIST_MAX 64
/* One URL is at most this long. */
#define URL_MAX_LEN 1024

struct url {
	char *str;    /* owned: the URL as Go prints it ("http://127.0.0.1:2379") */
	char *scheme; /* owned: lowercase */
	char *host;   /* owned: without brackets or port ("::1", "localhost") */
	char *port;   /* owned: the port text, possibly empty */
};

struct url_list {
	struct url *v; /* owned */
	size_t n;
};

/*
 * Parses one URL (surrounding white space trimmed) and checks it as
 * types.NewURLs does. On failure returns -EINVAL and writes etcd's message
 * to err (errlen bytes), ret untouched.
 */
int url_parse(const char *in, struct url *ret, char *err, size_t errlen);
void url_clear(struct url *u);

/*
 * Parses a comma-separated list (the empty string is the empty list) and
 * sorts it by its printed form, as etcd does. 0 or -EINVAL (message in err)
 * or -ENOMEM.
 */
int url_list_parse(const char *s, struct url_list *ret, char *err,
		   size_t errlen);
void url_list_clear(struct url_list *l);
int url_list_copy(const struct url_list *from, struct url_list *ret);
/* The URLs joined with sep, malloc'ed, or NULL. */
char *url_list_join(const struct url_list *l, const char *sep);
bool url_list_equal(const struct url_list *a, const struct url_list *b);

/* True if host is an IPv4 or IPv6 literal (Go's net.ParseIP). */
bool url_host_is_ip(const char *host);

#endif
