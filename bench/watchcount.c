/* Watch fan-out reader for bench/run.sh: counts the events a member delivers to N watchers. */
/*
 *	watchcount HOST PREFIX STREAMS WATCHES_PER_STREAM
 *
 * Opens STREAMS connections to HOST:2379, each a POST /v3/watch whose body holds
 * WATCHES_PER_STREAM create_requests on PREFIX (a prefix watch). Once every watch is
 * created it prints "READY" and waits for a line on stdin (run.sh sends it as it starts
 * the put load), then counts events until every watcher has received the key PREFIX~end
 * (run.sh puts it once the load is over: a watcher gets events in revision order, so
 * by then it has everything before it) and prints
 *	WATCH <events> <seconds> <events/s> <closed streams> <timed out 0|1>
 * so a server that lags behind its watchers is measured until it has caught up.
 * Events are counted by the `"kv":{` that opens each event's kv (prev_kv is never asked
 * for, and `"prev_kv":{` would not match anyway), so no JSON is parsed: the reader must
 * never be what limits the rate. Built by run.sh with cc -O2; Linux (epoll) only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 4096
#define READ_SIZE (256 * 1024)
#define CREATE_TIMEOUT 60.0	/* seconds for every watch to be created */
#define DRAIN_TIMEOUT 300.0	/* seconds from GO for every watcher to see the end key */

/* The last bytes of the previous read: a pattern may span two reads. */
struct tail {
	char b[128];
	size_t n;
};

struct stream {
	int fd;
	struct tail ev, cr, end;	/* one per pattern counted */
	int open;
};

static const char EVENT[] = "\"kv\":{";
static const char CREATED[] = "\"created\":true";

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
b64(const unsigned char *in, size_t n, char *out)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = t[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = in[i] << 16;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = in[i] << 16 | in[i + 1] << 8;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* Occurrences of pat in tail+buf that end inside buf; updates the tail. */
static uint64_t
count(struct tail *s, const char *buf, size_t n, const char *pat)
{
	size_t plen = strlen(pat), keep;
	char join[256];
	uint64_t c = 0;
	const char *p, *end = buf + n;

	/* Matches that start in the tail and end in this read. */
	if (s->n > 0) {
		size_t take = n < plen - 1 ? n : plen - 1;

		memcpy(join, s->b, s->n);
		memcpy(join + s->n, buf, take);
		for (p = join; p + plen <= join + s->n + take; p++)
			if (p < join + s->n && memcmp(p, pat, plen) == 0)
				c++;
	}
	for (p = buf; (p = memmem(p, end - p, pat, plen)) != NULL; p += plen)
		c++;
	keep = plen - 1;
	if (n >= keep) {
		memcpy(s->b, end - keep, keep);
		s->n = keep;
	} else {
		size_t drop = s->n + n > keep ? s->n + n - keep : 0;

		memmove(s->b, s->b + drop, s->n - drop);
		memcpy(s->b + s->n - drop, buf, n);
		s->n = s->n - drop + n;
	}
	return c;
}

static int
open_stream(const char *host, const char *body, size_t blen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(2379) };
	char hdr[256];
	int fd, n;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	n = snprintf(hdr, sizeof(hdr), "POST /v3/watch HTTP/1.1\r\nHost: %s:2379\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", host, blen);
	if (write(fd, hdr, n) != n || write(fd, body, blen) != (ssize_t)blen) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static struct stream ss[MAX_STREAMS];
	static char buf[READ_SIZE];
	struct epoll_event evs[64];
	char key[256], end[256], req[1024], endkey[256], endpat[300], *body;
	const char *host, *prefix;
	int nstreams, per, ep, i, open_streams, timed_out = 0;
	uint64_t created = 0, events = 0, ends = 0, total;
	double t0, go = 0;
	size_t plen, rlen, blen = 0;
	char line[16];

	if (argc != 5) {
		fprintf(stderr, "usage: watchcount HOST PREFIX STREAMS WATCHES\n");
		return 2;
	}
	host = argv[1];
	prefix = argv[2];
	nstreams = atoi(argv[3]);
	per = atoi(argv[4]);
	plen = strlen(prefix);
	if (nstreams < 1 || nstreams > MAX_STREAMS || per < 1 || per > 10000 ||
	    plen == 0 || plen > 60) {
		fprintf(stderr, "watchcount: bad arguments\n");
		return 2;
	}
	/* The prefix's range end: the prefix with its last byte plus one (ASCII here). */
	b64((const unsigned char *)prefix, plen, key);
	memcpy(req, prefix, plen);
	req[plen - 1]++;
	b64((const unsigned char *)req, plen, end);
	snprintf(req, sizeof(req), "%s~end", prefix);
	b64((const unsigned char *)req, plen + 4, endkey);
	snprintf(endpat, sizeof(endpat), "\"key\":\"%s\"", endkey);
	rlen = snprintf(req, sizeof(req),
	    "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}\n", key, end);
	body = malloc(rlen * per + 1);
	if (body == NULL)
		return 1;
	for (i = 0; i < per; i++) {
		memcpy(body + blen, req, rlen);
		blen += rlen;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	for (i = 0; i < nstreams; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };

		ss[i].fd = open_stream(host, body, blen);
		if (ss[i].fd < 0) {
			fprintf(stderr, "watchcount: stream %d: %s\n", i, strerror(-ss[i].fd));
			return 1;
		}
		ss[i].open = 1;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ss[i].fd, &e) < 0)
			return 1;
	}
	open_streams = nstreams;
	free(body);

	/* Phase 1: every watch created; phase 2 (after GO): count until the end key. */
	total = (uint64_t)nstreams * per;
	t0 = now();
	for (;;) {
		int n;

		if (go == 0 && created >= total) {
			printf("READY\n");
			fflush(stdout);
			if (fgets(line, sizeof(line), stdin) == NULL)
				return 1;
			events = 0;
			go = now();
		}
		if (go == 0 && now() - t0 > CREATE_TIMEOUT) {
			fprintf(stderr, "watchcount: only %llu of %llu watches created\n",
			    (unsigned long long)created, (unsigned long long)total);
			return 1;
		}
		if (go != 0 && ends + (uint64_t)(nstreams - open_streams) * per >= total)
			break;
		if (go != 0 && now() - go > DRAIN_TIMEOUT) {
			timed_out = 1;
			break;
		}
		n = epoll_wait(ep, evs, 64, 100);
		if (n < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n; i++) {
			struct stream *s = &ss[evs[i].data.u32];
			ssize_t r = read(s->fd, buf, sizeof(buf));

			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				s->open = 0;
				open_streams--;
				continue;
			}
			if (go == 0)
				created += count(&s->cr, buf, r, CREATED);
			events += count(&s->ev, buf, r, EVENT);
			if (go != 0)
				ends += count(&s->end, buf, r, endpat);
		}
		if (open_streams == 0)
			break;
	}
	t0 = go != 0 ? now() - go : 0;
	if (events >= ends)
		events -= ends;	/* the end key's own events are not load */
	printf("WATCH %llu %.2f %.1f %d %d\n", (unsigned long long)events, t0,
	    t0 > 0 ? events / t0 : 0.0, nstreams - open_streams, timed_out);
	for (i = 0; i < nstreams; i++)
		if (ss[i].open)
			close(ss[i].fd);
	return 0;
}
