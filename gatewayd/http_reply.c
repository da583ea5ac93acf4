/*
 * Replies as etcd's HTTP side sends them: the gateway's JSON and error
 * shape, Go's plain-text errors, the CORS headers on everything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gojson.h"
#include "gw.h"

/* grpc-gateway v1's HTTPStatusFromCode. */
int http_status_of(uint32_t code)
{
	switch (code) {
	case 0: return 200;
	case 1: return 408;  /* Canceled */
	case 3: return 400;  /* InvalidArgument */
	case 4: return 504;  /* DeadlineExceeded */
	case 5: return 404;  /* NotFound */
	case 6: return 409;  /* AlreadyExists */
	case 7: return 403;  /* PermissionDenied */
	case 8: return 429;  /* ResourceExhausted */
	case 9: return 412;  /* FailedPrecondition */
	case 10: return 409; /* Aborted */
	case 11: return 400; /* OutOfRange */
	case 12: return 501; /* Unimplemented */
	case 14: return 503; /* Unavailable */
	case 16: return 401; /* Unauthenticated */
	default: return 500; /* Unknown, Internal, DataLoss */
	}
}

/* Go's http.StatusText for the statuses we send. */
const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Request Entity Too Large";
	case 429: return "Too Many Requests";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Internal Server Error";
	}
}

void http_cors(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Access-Control-Allow-Headers",
			  "accept, content-type, authorization");
	evhttp_add_header(h, "Access-Control-Allow-Methods",
			  "POST, GET, OPTIONS, PUT, DELETE");
	evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
}

static void free_body(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* Hands body (malloc'd) to the reply without copying it. */
static void add_body(struct evhttp_request *req, char *body, size_t len)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	if (!body)
		return;
	if (len == 0 || evbuffer_add_reference(out, body, len, free_body, NULL) < 0)
		free(body);
}

void http_reply_json(struct evhttp_request *req, char *body, size_t len,
		     int grpc_ct)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	http_cors(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (grpc_ct)
		evhttp_add_header(h, "Grpc-Metadata-Content-Type",
				  "application/grpc");
	add_body(req, body, len);
	evhttp_send_reply(req, 200, "OK", NULL);
}

void http_reply_body(struct evhttp_request *req, int status, const char *ctype,
		     char *body, size_t len)
{
	http_cors(req);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", ctype);
	add_body(req, body, len);
	evhttp_send_reply(req, status, http_reason(status), NULL);
}

void http_reply_error(struct evhttp_request *req, uint32_t code,
		      const char *msg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct jbuf b = JBUF_INIT;
	size_t mlen = strlen(msg);
	int status = http_status_of(code);

	jbuf_add(&b, "{\"error\":", 9);
	gojson_quote(&b, msg, mlen);
	jbuf_add(&b, ",\"message\":", 11);
	gojson_quote(&b, msg, mlen);
	jbuf_printf(&b, ",\"code\":%u}", code);
	http_cors(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (b.oom) {
		jbuf_clear(&b);
	} else {
		size_t len;
		char *body = jbuf_steal(&b, &len);
		add_body(req, body, len);
	}
	evhttp_send_reply(req, status, http_reason(status), NULL);
}

void http_reply_text(struct evhttp_request *req, int status, const char *text,
		     const char *allow)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	http_cors(req);
	if (allow)
		evhttp_add_header(h, "Allow", allow);
	if (text) {
		evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
		evbuffer_add(evhttp_request_get_output_buffer(req), text,
			     strlen(text));
	}
	evhttp_send_reply(req, status, http_reason(status), NULL);
}

void http_reply_health(struct evhttp_request *req, int ok)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	/* etcd writes a healthy answer itself and an unhealthy one with Go's
	 * http.Error, which adds a newline and nosniff. */
	const char *body = ok ? "{\"health\":\"true\"}" : "{\"health\":\"false\"}\n";
	http_cors(req);
	/* etcd's /health says text/plain, though the body is JSON. */
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	if (!ok)
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
			  NULL);
}
