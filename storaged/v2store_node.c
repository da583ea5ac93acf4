/*
 * The v2 store's tree: nodes, children kept sorted by name, the TTL heap,
 * path cleaning as Go's path.Clean, lookups with etcd's errors, and the
 * store's life (new, load, free).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "v2store_int.h"

static int64_t real_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t v2_now(const struct v2store *s)
{
	return s->now();
}

size_t v2_clean_path(const char *p, char *out)
{
	/* path.Clean("/" + p), in place: writes never pass reads. */
	size_t n = strlen(p) + 1;
	out[0] = '/';
	memcpy(out + 1, p, n - 1);
	size_t r = 1, w = 1;
	while (r < n) {
		if (out[r] == '/') {
			r++;
		} else if (out[r] == '.' && (r + 1 == n || out[r + 1] == '/')) {
			r++;
		} else if (out[r] == '.' && r + 1 < n && out[r + 1] == '.' &&
			   (r + 2 == n || out[r + 2] == '/')) {
			r += 2;
			/* Rooted: ".." at the root stays at the root. */
			if (w > 1) {
				w--;
				while (w > 1 && out[w] != '/')
					w--;
			}
		} else {
			if (w != 1)
				out[w++] = '/';
			while (r < n && out[r] != '/')
				out[w++] = out[r++];
		}
	}
	out[w] = 0;
	return w;
}

/* The TTL heap: a min-heap of nodes by expiration (etcd's ttlKeyHeap). */
static void heap_swap(struct v2store *s, size_t i, size_t j)
{
	struct v2_node *t = s->heap[i];
	s->heap[i] = s->heap[j];
	s->heap[j] = t;
	s->heap[i]->heap_pos = i;
	s->heap[j]->heap_pos = j;
}

static void heap_up(struct v2store *s, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (s->heap[p]->expire <= s->heap[i]->expire)
			break;
		heap_swap(s, i, p);
		i = p;
	}
}

static void heap_down(struct v2store *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < s->nheap && s->heap[l]->expire < s->heap[m]->expire)
			m = l;
		if (l + 1 < s->nheap && s->heap[l + 1]->expire < s->heap[m]->expire)
			m = l + 1;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

int v2_heap_push(struct v2store *s, struct v2_node *n)
{
	if (s->nheap == s->capheap) {
		size_t cap = s->capheap ? s->capheap * 2 : 64;
		struct v2_node **h = realloc(s->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		s->heap = h;
		s->capheap = cap;
	}
	n->heap_pos = s->nheap;
	s->heap[s->nheap++] = n;
	heap_up(s, n->heap_pos);
	return 0;
}

void v2_heap_remove(struct v2store *s, struct v2_node *n)
{
	size_t i = n->heap_pos;
	if (i == V2_NOHEAP)
		return;
	n->heap_pos = V2_NOHEAP;
	if (i == --s->nheap)
		return;
	s->heap[i] = s->heap[s->nheap];
	s->heap[i]->heap_pos = i;
	heap_down(s, i);
	heap_up(s, i);
}

struct v2_node *v2_heap_top(const struct v2store *s)
{
	return s->nheap ? s->heap[0] : NULL;
}

int64_t v2_next_expiry(const struct v2store *s)
{
	return s->nheap ? s->heap[0]->expire : 0;
}

int v2_update_ttl(struct v2store *s, struct v2_node *n, int64_t expire)
{
	/* etcd's UpdateTTL: 0 makes the node permanent. */
	if (n->expire) {
		n->expire = expire;
		if (!expire) {
			v2_heap_remove(s, n);
		} else {
			heap_down(s, n->heap_pos);
			heap_up(s, n->heap_pos);
		}
		return 0;
	}
	if (!expire)
		return 0;
	n->expire = expire;
	return v2_heap_push(s, n);
}

/* Nodes. */
struct v2_node *v2_node_new(struct v2store *s, const char *path, size_t plen,
			    int dir, const char *value, size_t vlen,
			    uint64_t index, int64_t expire)
{
	struct v2_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->path = malloc(plen + 1);
	if (!dir)
		n->value = malloc(vlen + 1);
	if (!n->path || (!dir && !n->value)) {
		free(n->path);
		free(n->value);
		free(n);
		return NULL;
	}
	memcpy(n->path, path, plen);
	n->path[plen] = 0;
	n->plen = plen;
	const char *slash = memrchr(n->path, '/', plen);
	n->name = slash ? slash + 1 : n->path;
	n->nlen = plen - (size_t)(n->name - n->path);
	if (!dir) {
		memcpy(n->value, value, vlen);
		n->value[vlen] = 0;
		n->vlen = vlen;
	}
	n->dir = dir;
	n->created = n->modified = index;
	n->expire = expire;
	n->heap_pos = V2_NOHEAP;
	s->nnodes++;
	return n;
}

void v2_node_free(struct v2store *s, struct v2_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		v2_node_free(s, n->kids[i]);
	free(n->kids);
	free(n->path);
	free(n->value);
	free(n);
	s->nnodes--;
}

static int name_cmp(const struct v2_node *n, const char *name, size_t len)
{
	size_t m = n->nlen < len ? n->nlen : len;
	int c = memcmp(n->name, name, m);
	if (c)
		return c;
	return n->nlen < len ? -1 : n->nlen > len;
}

/* The position of name among d's children, or where it would go. */
static size_t kid_pos(const struct v2_node *d, const char *name, size_t len,
		      int *ret_found)
{
	size_t lo = 0, hi = d->nkids;
	/* In-order keys and most loads append: check the end first. */
	if (hi && name_cmp(d->kids[hi - 1], name, len) < 0) {
		*ret_found = 0;
		return hi;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (name_cmp(d->kids[mid], name, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = lo < d->nkids && name_cmp(d->kids[lo], name, len) == 0;
	return lo;
}

struct v2_node *v2_child(const struct v2_node *d, const char *name, size_t len)
{
	int found;
	size_t i = kid_pos(d, name, len, &found);
	return found ? d->kids[i] : NULL;
}

int v2_add_child(struct v2_node *d, struct v2_node *n)
{
	int found;
	size_t i = kid_pos(d, n->name, n->nlen, &found);
	if (found)
		return -EEXIST;
	if (d->nkids == d->capkids) {
		size_t cap = d->capkids ? d->capkids * 2 : 4;
		struct v2_node **k = realloc(d->kids, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		d->kids = k;
		d->capkids = cap;
	}
	memmove(d->kids + i + 1, d->kids + i, (d->nkids - i) * sizeof(*d->kids));
	d->kids[i] = n;
	d->nkids++;
	n->parent = d;
	return 0;
}

void v2_detach(struct v2_node *n)
{
	struct v2_node *d = n->parent;
	if (!d)
		return;
	int found;
	size_t i = kid_pos(d, n->name, n->nlen, &found);
	if (found && d->kids[i] == n) {
		memmove(d->kids + i, d->kids + i + 1,
			(d->nkids - i - 1) * sizeof(*d->kids));
		d->nkids--;
	}
	n->parent = NULL;
}

int v2_lookup(struct v2store *s, const char *path, size_t plen,
	      struct v2_node **ret, uint32_t *ret_code, const char **ret_cause,
	      size_t *ret_clen)
{
	/* etcd's internalGet: walks the components; a file on the way is
	 * "Not a directory" (cause: that file), a missing one "Key not
	 * found" (cause: the path up to it). */
	struct v2_node *cur = s->root;
	size_t i = 1;
	while (i < plen) {
		size_t j = i;
		while (j < plen && path[j] != '/')
			j++;
		if (!cur->dir) {
			*ret_code = V2_ENOTDIR;
			*ret_cause = cur->path;
			*ret_clen = cur->plen;
			return -1;
		}
		struct v2_node *c = v2_child(cur, path + i, j - i);
		if (!c) {
			*ret_code = V2_EKEYNOTFOUND;
			*ret_cause = path;
			*ret_clen = j;
			return -1;
		}
		cur = c;
		i = j + 1;
	}
	*ret = cur;
	return 0;
}

int v2_new(int64_t (*now)(void), struct v2store **ret)
{
	struct v2store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->now = now ? now : real_now;
	/* etcd's "/1" namespace: made at index 0, so shown without indexes. */
	s->root = v2_node_new(s, "/", 1, 1, NULL, 0, 0, 0);
	if (!s->root) {
		free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void v2_free(struct v2store *s)
{
	if (!s)
		return;
	v2w_free(s);
	v2_node_free(s, s->root);
	free(s->heap);
	free(s->jb.p);
	free(s);
}

void v2_set_persist(struct v2store *s, const struct v2_persist *p)
{
	s->persist = *p;
}

void v2_set_clock(struct v2store *s, int64_t (*now)(void))
{
	s->now = now ? now : real_now;
}

uint64_t v2_index(const struct v2store *s)
{
	return s->index;
}

size_t v2_node_count(const struct v2store *s)
{
	/* The root is not a node anybody made. */
	return s->nnodes - 1;
}

int v2_load_node(struct v2store *s, const struct v2_rec *r)
{
	if (r->plen < 2 || r->path[0] != '/')
		return -EINVAL;
	const char *slash = memrchr(r->path, '/', r->plen);
	struct v2_node *d = s->root;
	uint32_t code;
	const char *cause;
	size_t clen;
	if (slash != r->path &&
	    v2_lookup(s, r->path, (size_t)(slash - r->path), &d, &code,
		      &cause, &clen) < 0)
		return -EINVAL;
	if (!d->dir)
		return -EINVAL;
	struct v2_node *n = v2_node_new(s, r->path, r->plen, r->dir, r->value,
					r->vlen, r->created, r->expire);
	if (!n)
		return -ENOMEM;
	n->modified = r->modified;
	int ret = v2_add_child(d, n);
	if (ret == 0 && n->expire)
		ret = v2_heap_push(s, n);
	if (ret < 0) {
		v2_detach(n);
		v2_node_free(s, n);
	}
	return ret;
}

void v2_load_index(struct v2store *s, uint64_t index)
{
	s->index = index;
	/* No history survives: a wait for an index at or below this one
	 * cannot be answered and is told so. */
	s->hstart = index + 1;
	s->hlast = index;
}
