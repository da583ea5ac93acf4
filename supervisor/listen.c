/* TCP listeners for gatewayd, bound by the supervisor before any worker runs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "listen.h"

/* Go prints syscall errors in lower case ("address already in use"). */
static void go_strerror(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	if (buf[0] && isupper((unsigned char)buf[0]) &&
	    !(buf[1] && isupper((unsigned char)buf[1])))
		buf[0] = (char)tolower((unsigned char)buf[0]);
}

int listener_open(const struct url *u, bool peer, struct listener *ret,
		  char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	const char *host = strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
	char addr[300], es[128];
	char *end;
	int one = 1;

	errno = 0;
	unsigned long port = strtoul(u->port, &end, 10);
	if (!u->port[0] || *end || errno || port > 65535) {
		snprintf(err, errlen, "listen tcp: address %s: invalid port", u->port);
		return -EINVAL;
	}
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		sl = sizeof(*in4);
		snprintf(addr, sizeof(addr), "%s:%lu", host, port);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*in6);
		snprintf(addr, sizeof(addr), "[%s]:%lu", host, port);
	} else {
		snprintf(err, errlen, "listen tcp %s:%s: expected an IP address",
			 host, u->port);
		return -EINVAL;
	}

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		go_strerror(e, es, sizeof(es));
		snprintf(err, errlen, "listen tcp %s: socket: %s", addr, es);
		return -e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Accepted connections inherit it: no Nagle delay on replies that
	 * leave in several writes (Go sets it on every TCP connection). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	const char *op = "bind";
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    (op = "listen", listen(fd, LISTEN_BACKLOG) < 0)) {
		int e = errno;
		go_strerror(e, es, sizeof(es));
		snprintf(err, errlen, "listen tcp %s: %s: %s", addr, op, es);
		close(fd);
		return -e;
	}
	char *url = strdup(u->str);
	if (!url) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret->fd = fd;
	ret->url = url;
	ret->peer = peer;
	return 0;
}

void listener_close(struct listener *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->url);
	l->fd = -1;
	l->url = NULL;
}

int listeners_open(const struct config *c, bool clients_only,
		   struct listener *ls, size_t *n, char *err, size_t errlen)
{
	static const struct {
		enum flag_id f;
		bool peer;
	} lf[] = {{F_LISTEN_PEER_URLS, true}, {F_LISTEN_CLIENT_URLS, false}};
	for (size_t k = clients_only ? 1 : 0; k < 2; k++) {
		const struct url_list *l = cfg_urls(c, lf[k].f);
		for (size_t i = 0; i < l->n; i++) {
			int r = listener_open(&l->v[i], lf[k].peer, &ls[*n], err,
					      errlen);
			if (r < 0)
				return r;
			(*n)++;
		}
	}
	return 0;
}
