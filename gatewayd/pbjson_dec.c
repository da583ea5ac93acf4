/*
 * JSON -> protobuf-c, following gogo jsonpb's Unmarshaler.unmarshalValue
 * step by step: fields are taken in struct order (oneof members last), the
 * camelCase name wins over the proto name, null leaves a field unset, and
 * each scalar goes through what encoding/json would do with it, so the first
 * error is the one Go reports, worded as Go words it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "pbjson.h"

struct dctx {
	const char *s; /* the whole body; spans point into it */
	struct arena *a;
	char *err;
};

struct span {
	const char *p;
	size_t n;
};

static int fail(struct dctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct dctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, GOJSON_ERRMAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Out of memory, or the request's arena limit reached: either way the
 * request is too large for us to take. */
static int nomem(struct dctx *c)
{
	snprintf(c->err, GOJSON_ERRMAX, "etcdserver: request is too large");
	return -ENOMEM;
}

/* The word Go's UnmarshalTypeError uses for a JSON value's kind. */
static const char *kind(struct span v)
{
	switch (v.p[0]) {
	case '{': return "object";
	case '[': return "array";
	case '"': return "string";
	case 't':
	case 'f': return "bool";
	}
	return "number";
}

static int is_null(struct span v)
{
	return v.n == 4 && memcmp(v.p, "null", 4) == 0;
}

/* protoc's JSON name: underscores dropped, the letter after one upcased. */
static int camel_eq(const char *key, size_t klen, const char *name)
{
	size_t k = 0;
	int up = 0;
	for (const char *p = name; *p; p++) {
		if (*p == '_') {
			up = 1;
			continue;
		}
		char ch = *p;
		if (up && ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		up = 0;
		if (k == klen || key[k] != ch)
			return 0;
		k++;
	}
	return k == klen;
}

static int is_signed(ProtobufCType t)
{
	return t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_SINT32 ||
	       t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_INT64 ||
	       t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_SFIXED64 ||
	       t == PROTOBUF_C_TYPE_ENUM;
}

static int is_64(ProtobufCType t)
{
	return pbjson_elem_size(t) == 8;
}

static const char *go_int_type(ProtobufCType t)
{
	if (is_64(t))
		return is_signed(t) ? "int64" : "uint64";
	return is_signed(t) ? "int32" : "uint32";
}

/* strconv.ParseInt / ParseUint in base 10, with the width's range. */
static int parse_int(struct span v, int sgn, int bits, int64_t *ret_i,
		     uint64_t *ret_u)
{
	size_t i = 0;
	int neg = 0;
	uint64_t acc = 0;

	if (i < v.n && (v.p[i] == '+' || v.p[i] == '-')) {
		if (!sgn && v.p[i] == '-')
			return -1;
		neg = v.p[i] == '-';
		i++;
	}
	if (i == v.n)
		return -1;
	for (; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		unsigned d = (unsigned)(v.p[i] - '0');
		if (acc > (UINT64_MAX - d) / 10)
			return -1;
		acc = acc * 10 + d;
	}
	if (sgn) {
		uint64_t lim = (uint64_t)1 << (bits - 1);
		if ((!neg && acc >= lim) || (neg && acc > lim))
			return -1;
		*ret_i = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	} else {
		if (bits < 64 && acc >> bits)
			return -1;
		*ret_u = acc;
	}
	return 0;
}

static void store_int(void *dst, ProtobufCType t, int64_t i, uint64_t u)
{
	if (is_64(t)) {
		if (is_signed(t))
			*(int64_t *)dst = i;
		else
			*(uint64_t *)dst = u;
	} else {
		if (is_signed(t))
			*(int32_t *)dst = (int32_t)i;
		else
			*(uint32_t *)dst = (uint32_t)u;
	}
}

static int dec_enum(struct dctx *c, const ProtobufCFieldDescriptor *f,
		    struct span v, void *dst)
{
	const ProtobufCEnumDescriptor *ed = f->descriptor;
	char tname[128];

	pbjson_go_enum_name(ed, tname, sizeof(tname));
	if (v.p[0] == '"') {
		/* Like jsonpb: the raw text between the quotes, unescaped. */
		struct span in = { v.p + 1, v.n - 2 };
		for (unsigned k = 0; k < ed->n_values; k++) {
			const char *nm = ed->values[k].name;
			if (strlen(nm) == in.n && memcmp(nm, in.p, in.n) == 0) {
				*(int32_t *)dst = ed->values[k].value;
				return 0;
			}
		}
		struct jbuf q = JBUF_INIT;
		go_quote(&q, in.p, in.n);
		int r = fail(c, "unknown value %.*s for enum %s",
			     q.oom ? 0 : (int)q.len, q.p ? q.p : "", tname);
		jbuf_clear(&q);
		return r;
	}
	if (is_null(v))
		return 0;
	int64_t i;
	if (v.p[0] == '{' || v.p[0] == '[' || v.p[0] == 't' || v.p[0] == 'f')
		return fail(c, "json: cannot unmarshal %s into Go value of type %s",
			    kind(v), tname);
	if (parse_int(v, 1, 32, &i, NULL) < 0)
		return fail(c, "json: cannot unmarshal number %.*s into Go value of type %s",
			    (int)v.n, v.p, tname);
	*(int32_t *)dst = (int32_t)i;
	return 0;
}

static int dec_int(struct dctx *c, ProtobufCType t, struct span v, void *dst)
{
	const char *tname = go_int_type(t);
	if (v.p[0] == '"') {
		/* jsonpb drops the quotes and hands the rest to json.Unmarshal. */
		struct span in = { v.p + 1, v.n - 2 };
		int r = gojson_check(in.p, in.n, c->err);
		if (r < 0)
			return r;
		size_t b = gojson_skip_ws(in.p, in.n, 0), e = in.n;
		while (e > b && strchr(" \t\r\n", in.p[e - 1]))
			e--;
		v.p = in.p + b;
		v.n = e - b;
	}
	if (is_null(v))
		return 0;
	if (v.p[0] == '{' || v.p[0] == '[' || v.p[0] == 't' || v.p[0] == 'f' ||
	    v.p[0] == '"')
		return fail(c, "json: cannot unmarshal %s into Go value of type %s",
			    kind(v), tname);
	int64_t i = 0;
	uint64_t u = 0;
	if (parse_int(v, is_signed(t), is_64(t) ? 64 : 32, &i, &u) < 0)
		return fail(c, "json: cannot unmarshal number %.*s into Go value of type %s",
			    (int)v.n, v.p, tname);
	store_int(dst, t, i, u);
	return 0;
}

static int dec_float(struct dctx *c, ProtobufCType t, struct span v, void *dst)
{
	const char *tname = t == PROTOBUF_C_TYPE_FLOAT ? "float32" : "float64";
	char tmp[64];
	if (v.p[0] == '"') {
		v.p++;
		v.n -= 2;
	}
	if (is_null(v))
		return 0;
	if (v.n == 0 || v.n >= sizeof(tmp) || strchr("{[tf\"", v.p[0]))
		return fail(c, "json: cannot unmarshal %s into Go value of type %s",
			    v.n ? kind(v) : "string", tname);
	memcpy(tmp, v.p, v.n);
	tmp[v.n] = 0;
	char *end;
	double d = strtod(tmp, &end);
	if (*end)
		return fail(c, "json: cannot unmarshal number %s into Go value of type %s",
			    tmp, tname);
	if (t == PROTOBUF_C_TYPE_FLOAT)
		*(float *)dst = (float)d;
	else
		*(double *)dst = d;
	return 0;
}

/* A string literal unescaped; points into the body when it needs no copy. */
static int unquote(struct dctx *c, struct span v, struct span *ret)
{
	/* Fast path: no escapes, pure ASCII: the bytes are the value. */
	size_t k;
	for (k = 1; k + 1 < v.n; k++) {
		unsigned char ch = (unsigned char)v.p[k];
		if (ch == '\\' || ch >= 0x80)
			break;
	}
	if (k + 1 >= v.n) {
		ret->p = v.p + 1;
		ret->n = v.n - 2;
		return 0;
	}
	/* Escapes only shrink; an invalid UTF-8 byte grows into U+FFFD's
	 * three bytes. */
	size_t cap = v.n;
	for (; k + 1 < v.n; k++)
		if ((unsigned char)v.p[k] >= 0x80)
			cap += 2;
	char *out = arena_zalloc(c->a, cap);
	if (!out)
		return nomem(c);
	ret->n = gojson_unquote(v.p, v.n, out, NULL);
	ret->p = out;
	return 0;
}

static int dec_string(struct dctx *c, struct span v, char **dst)
{
	if (is_null(v))
		return 0;
	if (v.p[0] != '"')
		return fail(c, "json: cannot unmarshal %s into Go value of type string",
			    kind(v));
	struct span u;
	int r = unquote(c, v, &u);
	if (r < 0)
		return r;
	char *s = arena_zalloc(c->a, u.n + 1);
	if (!s)
		return nomem(c);
	memcpy(s, u.p, u.n);
	*dst = s;
	return 0;
}

/* encoding/json into []byte: a base64 string, or an array of small numbers. */
static int dec_bytes(struct dctx *c, struct span v, ProtobufCBinaryData *dst)
{
	if (is_null(v))
		return 0;
	if (v.p[0] == '"') {
		struct span u;
		int r = unquote(c, v, &u);
		if (r < 0)
			return r;
		if (u.n == 0)
			return 0;
		uint8_t *out = arena_zalloc(c->a, BASE64_DECLEN(u.n));
		if (!out)
			return nomem(c);
		size_t n, bad;
		if (base64_decode(out, u.p, u.n, &n, &bad) < 0)
			return fail(c, "illegal base64 data at input byte %zu", bad);
		dst->data = out;
		dst->len = n;
		return 0;
	}
	if (v.p[0] != '[')
		return fail(c, "json: cannot unmarshal %s into Go value of type []uint8",
			    kind(v));
	/* Count, then fill. */
	size_t n = 0, i = gojson_skip_ws(v.p, v.n, 1);
	while (v.p[i] != ']') {
		i = gojson_skip_ws(v.p, v.n, gojson_skip(v.p, v.n, i));
		n++;
		if (v.p[i] == ',')
			i = gojson_skip_ws(v.p, v.n, i + 1);
	}
	uint8_t *out = arena_zalloc(c->a, n ? n : 1);
	if (!out)
		return nomem(c);
	i = gojson_skip_ws(v.p, v.n, 1);
	for (size_t k = 0; k < n; k++) {
		size_t e = gojson_skip(v.p, v.n, i);
		struct span el = { v.p + i, e - i };
		uint64_t u = 0;
		if (!is_null(el)) {
			if (strchr("{[\"tf", el.p[0]))
				return fail(c, "json: cannot unmarshal %s into Go value of type uint8",
					    kind(el));
			if (parse_int(el, 0, 8, NULL, &u) < 0)
				return fail(c, "json: cannot unmarshal number %.*s into Go value of type uint8",
					    (int)el.n, el.p);
		}
		out[k] = (uint8_t)u;
		i = gojson_skip_ws(v.p, v.n, e);
		if (v.p[i] == ',')
			i = gojson_skip_ws(v.p, v.n, i + 1);
	}
	dst->data = out;
	dst->len = n;
	return 0;
}

static int dec_message(struct dctx *c, const ProtobufCMessageDescriptor *d,
		       struct span v, ProtobufCMessage *m, int depth);

static int new_message(struct dctx *c, const ProtobufCMessageDescriptor *d,
		       ProtobufCMessage **ret)
{
	ProtobufCMessage *m = arena_zalloc(c->a, d->sizeof_message);
	if (!m)
		return nomem(c);
	d->message_init(m);
	*ret = m;
	return 0;
}

/* One value of field f into dst (the field's storage, or an array slot). */
static int dec_value(struct dctx *c, const ProtobufCFieldDescriptor *f,
		     struct span v, void *dst, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		if (v.p[0] == 't' || v.p[0] == 'f') {
			*(protobuf_c_boolean *)dst = v.p[0] == 't';
			return 0;
		}
		if (is_null(v))
			return 0;
		return fail(c, "json: cannot unmarshal %s into Go value of type bool",
			    kind(v));
	case PROTOBUF_C_TYPE_ENUM:
		return dec_enum(c, f, v, dst);
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		return dec_float(c, f->type, v, dst);
	case PROTOBUF_C_TYPE_STRING:
		return dec_string(c, v, dst);
	case PROTOBUF_C_TYPE_BYTES:
		return dec_bytes(c, v, dst);
	case PROTOBUF_C_TYPE_MESSAGE: {
		/* A null message stays unset (a nil pointer in Go). */
		if (is_null(v))
			return 0;
		ProtobufCMessage *sub;
		int r = new_message(c, f->descriptor, &sub);
		if (r < 0)
			return r;
		r = dec_message(c, f->descriptor, v, sub, depth + 1);
		if (r < 0)
			return r;
		*(ProtobufCMessage **)dst = sub;
		return 0;
	}
	default:
		return dec_int(c, f->type, v, dst);
	}
}

static int dec_repeated(struct dctx *c, const ProtobufCFieldDescriptor *f,
			struct span v, ProtobufCMessage *m, int depth)
{
	if (is_null(v))
		return 0;
	if (v.p[0] != '[')
		return fail(c, "json: cannot unmarshal %s into Go value of type []json.RawMessage",
			    kind(v));
	size_t n = 0, i = gojson_skip_ws(v.p, v.n, 1);
	while (v.p[i] != ']') {
		i = gojson_skip_ws(v.p, v.n, gojson_skip(v.p, v.n, i));
		n++;
		if (v.p[i] == ',')
			i = gojson_skip_ws(v.p, v.n, i + 1);
	}
	if (n == 0)
		return 0;
	size_t es = pbjson_elem_size(f->type);
	if (n > SIZE_MAX / es)
		return nomem(c);
	char *arr = arena_zalloc(c->a, n * es);
	if (!arr)
		return nomem(c);
	i = gojson_skip_ws(v.p, v.n, 1);
	for (size_t k = 0; k < n; k++) {
		size_t e = gojson_skip(v.p, v.n, i);
		struct span el = { v.p + i, e - i };
		void *slot = arr + k * es;
		int r;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_null(el)) {
			/* Go keeps a nil element; protobuf-c cannot hold one,
			 * so it becomes an empty message. */
			ProtobufCMessage *sub;
			r = new_message(c, f->descriptor, &sub);
			if (r == 0)
				*(ProtobufCMessage **)slot = sub;
		} else {
			if (f->type == PROTOBUF_C_TYPE_STRING)
				*(char **)slot = (char *)protobuf_c_empty_string;
			r = dec_value(c, f, el, slot, depth);
		}
		if (r < 0)
			return r;
		i = gojson_skip_ws(v.p, v.n, e);
		if (v.p[i] == ',')
			i = gojson_skip_ws(v.p, v.n, i + 1);
	}
	*(size_t *)((char *)m + f->quantifier_offset) = n;
	*(void **)((char *)m + f->offset) = arr;
	return 0;
}

static int dec_field(struct dctx *c, const ProtobufCFieldDescriptor *f,
		     struct span v, ProtobufCMessage *m, int depth)
{
	void *dst = (char *)m + f->offset;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return dec_repeated(c, f, v, m, depth);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *oneof_case = (uint32_t *)((char *)m + f->quantifier_offset);
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_null(v))
			return 0;
		/* Go sets the oneof wrapper first, so a null scalar still
		 * selects the member, with its zero value. */
		uint32_t old = *oneof_case;
		*oneof_case = f->id;
		if (old != f->id) {
			memset(dst, 0, pbjson_elem_size(f->type));
			if (f->type == PROTOBUF_C_TYPE_STRING)
				*(char **)dst = (char *)protobuf_c_empty_string;
		}
		return dec_value(c, f, v, dst, depth);
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
	    !is_null(v) && f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    f->type != PROTOBUF_C_TYPE_STRING)
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
	return dec_value(c, f, v, dst, depth);
}

/* Field names are short: a longer key cannot name a field. */
#define MAX_KEY 64

static int dec_message(struct dctx *c, const ProtobufCMessageDescriptor *d,
		       struct span v, ProtobufCMessage *m, int depth)
{
	if (is_null(v))
		return 0;
	if (v.p[0] != '{')
		return fail(c, "json: cannot unmarshal %s into Go value of type map[string]json.RawMessage",
			    kind(v));
	/* Our stack is not Go's growable one: bound the recursion. */
	if (depth > PBJSON_MAX_DEPTH)
		return fail(c, "json: exceeded max depth");

	struct span orig[d->n_fields ? d->n_fields : 1];
	struct span camel[d->n_fields ? d->n_fields : 1];
	char key[3 * (MAX_KEY + 2)];
	memset(orig, 0, sizeof(orig));
	memset(camel, 0, sizeof(camel));

	/* Collect the members that name a field; later duplicates win, as
	 * in Go's map. Unknown members are skipped. */
	size_t i = gojson_skip_ws(v.p, v.n, 1);
	while (v.p[i] != '}') {
		size_t ke = gojson_skip(v.p, v.n, i);
		size_t klen = 0;
		int known = ke - i <= MAX_KEY + 2;
		if (known)
			klen = gojson_unquote(v.p + i, ke - i, key, NULL);
		i = gojson_skip_ws(v.p, v.n, ke);
		i = gojson_skip_ws(v.p, v.n, i + 1); /* ':' */
		size_t ve = gojson_skip(v.p, v.n, i);
		struct span val = { v.p + i, ve - i };
		for (unsigned k = 0; known && k < d->n_fields; k++) {
			const char *nm = d->fields[k].name;
			if (strlen(nm) == klen && memcmp(nm, key, klen) == 0)
				orig[k] = val;
			else if (camel_eq(key, klen, nm))
				camel[k] = val;
		}
		i = gojson_skip_ws(v.p, v.n, ve);
		if (v.p[i] == ',')
			i = gojson_skip_ws(v.p, v.n, i + 1);
	}

	/* Plain fields first, then oneof members, as jsonpb does. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned k = 0; k < d->n_fields; k++) {
			const ProtobufCFieldDescriptor *f = &d->fields[k];
			int oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
			if (oneof != pass)
				continue;
			struct span val = camel[k].p ? camel[k] : orig[k];
			if (!val.p)
				continue;
			int r = dec_field(c, f, val, m, depth);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int pbjson_decode_body(const ProtobufCMessageDescriptor *d, const char *body,
		       size_t len, struct arena *a, ProtobufCMessage **ret_msg,
		       char *err)
{
	struct dctx c = { body, a, err };
	size_t start = 0, end = 0;
	ProtobufCMessage *m;

	int r = gojson_decode_first(body, len, &start, &end, err);
	if (r < 0)
		return r;
	if (new_message(&c, d, &m) < 0)
		return -ENOMEM;
	if (r == 0) {
		struct span v = { body + start, end - start };
		r = dec_message(&c, d, v, m, 0);
		if (r < 0)
			return r;
	}
	*ret_msg = m;
	return 0;
}

void pbjson_go_enum_name(const ProtobufCEnumDescriptor *d, char *out, size_t n)
{
	const char *pkg = d->package_name ? d->package_name : "";
	size_t pl = strlen(pkg);
	const char *rest = d->name;
	if (pl && strncmp(rest, pkg, pl) == 0 && rest[pl] == '.')
		rest += pl + 1;
	int w = snprintf(out, n, "%s%s%s", pkg, pl ? "." : "", rest);
	if (w < 0)
		return;
	for (size_t k = pl ? pl + 1 : 0; k < n && out[k]; k++)
		if (out[k] == '.')
			out[k] = '_';
}
