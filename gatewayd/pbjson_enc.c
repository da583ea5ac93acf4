/*
 * protobuf-c -> JSON as etcd's gateway prints it (gogo jsonpb, OrigName,
 * EmitDefaults off): proto names, zero values and empty lists left out,
 * 64-bit integers quoted, enums by name (a bare number when unknown), bytes
 * in padded base64, a set but empty sub-message as {}, a set oneof member
 * always, even when zero.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "pbjson.h"

static void put_u64(struct jbuf *b, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jbuf_add(b, tmp + sizeof(tmp) - n, (size_t)n);
}

static void put_i64(struct jbuf *b, int64_t v)
{
	if (v < 0) {
		jbuf_putc(b, '-');
		put_u64(b, 0 - (uint64_t)v);
	} else {
		put_u64(b, (uint64_t)v);
	}
}

static int is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p == NULL;
	default:
		return *(const uint32_t *)p == 0;
	}
}

size_t pbjson_elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static void put_value(struct jbuf *b, const ProtobufCFieldDescriptor *f,
		      const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		jbuf_putc(b, '"');
		put_i64(b, *(const int64_t *)p);
		jbuf_putc(b, '"');
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		jbuf_putc(b, '"');
		put_u64(b, *(const uint64_t *)p);
		jbuf_putc(b, '"');
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		put_i64(b, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		put_u64(b, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		jbuf_printf(b, "%.9g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		jbuf_printf(b, "%.17g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (*(const protobuf_c_boolean *)p)
			jbuf_add(b, "true", 4);
		else
			jbuf_add(b, "false", 5);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int32_t v = *(const int32_t *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev) {
			jbuf_putc(b, '"');
			jbuf_puts(b, ev->name);
			jbuf_putc(b, '"');
		} else {
			put_i64(b, v);
		}
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		s = s ? s : "";
		gojson_quote(b, s, strlen(s));
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = p;
		if (jbuf_reserve(b, BASE64_ENCLEN(bd->len) + 2) < 0)
			return;
		b->p[b->len++] = '"';
		b->len += base64_encode(b->p + b->len, bd->data, bd->len);
		b->p[b->len++] = '"';
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
		if (m)
			pbjson_encode(b, m);
		else
			jbuf_add(b, "null", 4);
		break;
	}
	}
}

static void put_name(struct jbuf *b, const char *name, int *first)
{
	if (!*first)
		jbuf_putc(b, ',');
	*first = 0;
	jbuf_putc(b, '"');
	jbuf_puts(b, name);
	jbuf_add(b, "\":", 2);
}

void pbjson_encode(struct jbuf *b, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	int first = 1;

	jbuf_putc(b, '{');
	for (unsigned k = 0; k < d->n_fields; k++) {
		const ProtobufCFieldDescriptor *f = &d->fields[k];
		const char *p = (const char *)m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m +
						     f->quantifier_offset);
			if (n == 0)
				continue;
			const char *arr = *(char *const *)p;
			size_t es = pbjson_elem_size(f->type);
			put_name(b, f->name, &first);
			jbuf_putc(b, '[');
			for (size_t i = 0; i < n; i++) {
				if (i)
					jbuf_putc(b, ',');
				put_value(b, f, arr + i * es);
			}
			jbuf_putc(b, ']');
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t oneof_case = *(const uint32_t *)(
				(const char *)m + f->quantifier_offset);
			if (oneof_case != f->id)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    !*(void *const *)p)
				continue;
		} else if (is_zero(f, p)) {
			continue;
		}
		put_name(b, f->name, &first);
		put_value(b, f, p);
	}
	jbuf_putc(b, '}');
}
