/*
 * JSON <-> protobuf-c messages, by walking the message descriptors, with the
 * encoding of etcd's gRPC gateway (gogo jsonpb with OrigName): proto field
 * names out, proto or lowerCamelCase names in, 64-bit integers as strings,
 * zero values omitted, enums by name, bytes as padded base64, and Go's error
 * messages for every malformed input. No message has hand-written code.
 */
#ifndef ETCD_GATEWAYD_PBJSON_H
#define ETCD_GATEWAYD_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "gojson.h"
#include "jbuf.h"

/* Messages nest at most this deep (a txn in a txn in a txn...). */
#define PBJSON_MAX_DEPTH 512

/*
 * Decodes a request body as the gateway does (json.Decoder reads the first
 * value, anything after it is ignored; an empty body is an empty message).
 * The message and everything it points to are allocated in a (borrowed);
 * they live until the arena is cleared. On failure returns -EINVAL with
 * Go's message in err (GOJSON_ERRMAX bytes), or -ENOMEM.
 */
int pbjson_decode_body(const ProtobufCMessageDescriptor *d, const char *body,
		       size_t len, struct arena *a, ProtobufCMessage **ret_msg,
		       char *err);

/* Appends m (borrowed) as JSON, fields in field-number order, no newline. */
void pbjson_encode(struct jbuf *b, const ProtobufCMessage *m);

/* Bytes one element of a field of type t takes in a protobuf-c message. */
size_t pbjson_elem_size(ProtobufCType t);

/* The Go type name of an enum ("etcdserverpb.RangeRequest_SortOrder"). */
void pbjson_go_enum_name(const ProtobufCEnumDescriptor *d, char *out,
			 size_t n);

#endif
