/* Go's encoding/json scanner, unquoting and string escaping, in C. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gojson.h"

/*
 * The scanner: one state per state function of Go's scanner.go, so that the
 * same byte fails in the same state with the same words.
 */
enum st {
	ST_BEGIN_VALUE,
	ST_BEGIN_VALUE_OR_EMPTY,
	ST_BEGIN_STRING_OR_EMPTY,
	ST_BEGIN_STRING,
	ST_END_VALUE,
	ST_END_TOP,
	ST_IN_STRING,
	ST_IN_STRING_ESC,
	ST_ESC_U, ST_ESC_U1, ST_ESC_U12, ST_ESC_U123,
	ST_NEG, ST_1, ST_0, ST_DOT, ST_DOT0, ST_E, ST_ESIGN, ST_E0,
	ST_T, ST_TR, ST_TRU,
	ST_F, ST_FA, ST_FAL, ST_FALS,
	ST_N, ST_NU, ST_NUL,
	ST_ERROR,
};

enum ps { PS_OBJECT_KEY, PS_OBJECT_VALUE, PS_ARRAY_VALUE };

enum scan_ret { SC_CONTINUE, SC_END_VALUE, SC_END, SC_ERROR };

struct scanner {
	enum st st;
	int end_top;
	size_t depth;
	unsigned char *stack; /* GOJSON_MAX_DEPTH + 1 entries */
	char *err;            /* GOJSON_ERRMAX bytes */
};

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* Go's quoteChar: the byte as a rune, in single quotes, strconv-escaped. */
static void quote_char(char *out, size_t n, unsigned char c)
{
	if (c == '\'')
		snprintf(out, n, "'\\''");
	else if (c == '"')
		snprintf(out, n, "'\"'");
	else if (c == '\\')
		snprintf(out, n, "'\\\\'");
	else if (c >= 0x20 && c < 0x7f)
		snprintf(out, n, "'%c'", c);
	else if (c == '\a')
		snprintf(out, n, "'\\a'");
	else if (c == '\b')
		snprintf(out, n, "'\\b'");
	else if (c == '\f')
		snprintf(out, n, "'\\f'");
	else if (c == '\n')
		snprintf(out, n, "'\\n'");
	else if (c == '\r')
		snprintf(out, n, "'\\r'");
	else if (c == '\t')
		snprintf(out, n, "'\\t'");
	else if (c == '\v')
		snprintf(out, n, "'\\v'");
	else if (c < 0x80)
		snprintf(out, n, "'\\x%02x'", c);
	else if (c < 0xa1 || c == 0xad)
		/* C1 controls, NBSP and soft hyphen are not printable. */
		snprintf(out, n, "'\\u%04x'", c);
	else /* printable Latin-1, as UTF-8 */
		snprintf(out, n, "'%c%c'", 0xc0 | (c >> 6), 0x80 | (c & 0x3f));
}

static enum scan_ret sc_error(struct scanner *s, unsigned char c,
			      const char *context)
{
	char q[16];
	quote_char(q, sizeof(q), c);
	snprintf(s->err, GOJSON_ERRMAX, "invalid character %s %s", q, context);
	s->st = ST_ERROR;
	return SC_ERROR;
}

static enum scan_ret push(struct scanner *s, unsigned char c, enum ps p,
			  enum st next)
{
	if (s->depth >= GOJSON_MAX_DEPTH)
		return sc_error(s, c, "exceeded max depth");
	s->stack[s->depth++] = (unsigned char)p;
	s->st = next;
	return SC_CONTINUE;
}

static enum scan_ret step(struct scanner *s, unsigned char c);

static enum scan_ret end_value(struct scanner *s, unsigned char c)
{
	if (s->depth == 0) {
		s->st = ST_END_TOP;
		s->end_top = 1;
		return step(s, c);
	}
	if (is_space(c)) {
		s->st = ST_END_VALUE;
		return SC_CONTINUE;
	}
	switch (s->stack[s->depth - 1]) {
	case PS_OBJECT_KEY:
		if (c == ':') {
			s->stack[s->depth - 1] = PS_OBJECT_VALUE;
			s->st = ST_BEGIN_VALUE;
			return SC_CONTINUE;
		}
		return sc_error(s, c, "after object key");
	case PS_OBJECT_VALUE:
		if (c == ',') {
			s->stack[s->depth - 1] = PS_OBJECT_KEY;
			s->st = ST_BEGIN_STRING;
			return SC_CONTINUE;
		}
		if (c == '}') {
			s->depth--;
			s->st = s->depth ? ST_END_VALUE : ST_END_TOP;
			s->end_top = s->depth == 0;
			return SC_END_VALUE;
		}
		return sc_error(s, c, "after object key:value pair");
	default:
		if (c == ',') {
			s->st = ST_BEGIN_VALUE;
			return SC_CONTINUE;
		}
		if (c == ']') {
			s->depth--;
			s->st = s->depth ? ST_END_VALUE : ST_END_TOP;
			s->end_top = s->depth == 0;
			return SC_END_VALUE;
		}
		return sc_error(s, c, "after array element");
	}
}

static enum scan_ret begin_value(struct scanner *s, unsigned char c)
{
	if (is_space(c))
		return SC_CONTINUE;
	switch (c) {
	case '{':
		return push(s, c, PS_OBJECT_KEY, ST_BEGIN_STRING_OR_EMPTY);
	case '[':
		return push(s, c, PS_ARRAY_VALUE, ST_BEGIN_VALUE_OR_EMPTY);
	case '"':
		s->st = ST_IN_STRING;
		return SC_CONTINUE;
	case '-':
		s->st = ST_NEG;
		return SC_CONTINUE;
	case '0':
		s->st = ST_0;
		return SC_CONTINUE;
	case 't':
		s->st = ST_T;
		return SC_CONTINUE;
	case 'f':
		s->st = ST_F;
		return SC_CONTINUE;
	case 'n':
		s->st = ST_N;
		return SC_CONTINUE;
	}
	if (c >= '1' && c <= '9') {
		s->st = ST_1;
		return SC_CONTINUE;
	}
	return sc_error(s, c, "looking for beginning of value");
}

static enum scan_ret lit(struct scanner *s, unsigned char c, char want,
			 enum st next, const char *context)
{
	if (c == (unsigned char)want) {
		s->st = next;
		return SC_CONTINUE;
	}
	return sc_error(s, c, context);
}

static enum scan_ret step(struct scanner *s, unsigned char c)
{
	switch (s->st) {
	case ST_BEGIN_VALUE:
		return begin_value(s, c);
	case ST_BEGIN_VALUE_OR_EMPTY:
		if (is_space(c))
			return SC_CONTINUE;
		if (c == ']')
			return end_value(s, c);
		return begin_value(s, c);
	case ST_BEGIN_STRING_OR_EMPTY:
		if (is_space(c))
			return SC_CONTINUE;
		if (c == '}') {
			s->stack[s->depth - 1] = PS_OBJECT_VALUE;
			return end_value(s, c);
		}
		/* fallthrough */
	case ST_BEGIN_STRING:
		if (is_space(c))
			return SC_CONTINUE;
		if (c == '"') {
			s->st = ST_IN_STRING;
			return SC_CONTINUE;
		}
		return sc_error(s, c, "looking for beginning of object key string");
	case ST_END_VALUE:
		return end_value(s, c);
	case ST_END_TOP:
		/* Like Go, the value is complete either way; a non-space
		 * byte is an error only for whoever reads on. */
		if (!is_space(c)) {
			sc_error(s, c, "after top-level value");
			s->end_top = 1;
		}
		return SC_END;
	case ST_IN_STRING:
		if (c == '"') {
			s->st = ST_END_VALUE;
			return SC_CONTINUE;
		}
		if (c == '\\') {
			s->st = ST_IN_STRING_ESC;
			return SC_CONTINUE;
		}
		if (c < 0x20)
			return sc_error(s, c, "in string literal");
		return SC_CONTINUE;
	case ST_IN_STRING_ESC:
		switch (c) {
		case 'b': case 'f': case 'n': case 'r': case 't':
		case '\\': case '/': case '"':
			s->st = ST_IN_STRING;
			return SC_CONTINUE;
		case 'u':
			s->st = ST_ESC_U;
			return SC_CONTINUE;
		}
		return sc_error(s, c, "in string escape code");
	case ST_ESC_U:
	case ST_ESC_U1:
	case ST_ESC_U12:
	case ST_ESC_U123:
		if (!is_hex(c))
			return sc_error(s, c, "in \\u hexadecimal character escape");
		s->st = s->st == ST_ESC_U123 ? ST_IN_STRING : s->st + 1;
		return SC_CONTINUE;
	case ST_NEG:
		if (c == '0') {
			s->st = ST_0;
			return SC_CONTINUE;
		}
		if (c >= '1' && c <= '9') {
			s->st = ST_1;
			return SC_CONTINUE;
		}
		return sc_error(s, c, "in numeric literal");
	case ST_1:
		if (c >= '0' && c <= '9')
			return SC_CONTINUE;
		/* fallthrough */
	case ST_0:
		if (c == '.') {
			s->st = ST_DOT;
			return SC_CONTINUE;
		}
		if (c == 'e' || c == 'E') {
			s->st = ST_E;
			return SC_CONTINUE;
		}
		return end_value(s, c);
	case ST_DOT:
		if (c >= '0' && c <= '9') {
			s->st = ST_DOT0;
			return SC_CONTINUE;
		}
		return sc_error(s, c, "after decimal point in numeric literal");
	case ST_DOT0:
		if (c >= '0' && c <= '9')
			return SC_CONTINUE;
		if (c == 'e' || c == 'E') {
			s->st = ST_E;
			return SC_CONTINUE;
		}
		return end_value(s, c);
	case ST_E:
		if (c == '+' || c == '-') {
			s->st = ST_ESIGN;
			return SC_CONTINUE;
		}
		/* fallthrough */
	case ST_ESIGN:
		if (c >= '0' && c <= '9') {
			s->st = ST_E0;
			return SC_CONTINUE;
		}
		return sc_error(s, c, "in exponent of numeric literal");
	case ST_E0:
		if (c >= '0' && c <= '9')
			return SC_CONTINUE;
		return end_value(s, c);
	case ST_T:
		return lit(s, c, 'r', ST_TR, "in literal true (expecting 'r')");
	case ST_TR:
		return lit(s, c, 'u', ST_TRU, "in literal true (expecting 'u')");
	case ST_TRU:
		return lit(s, c, 'e', ST_END_VALUE, "in literal true (expecting 'e')");
	case ST_F:
		return lit(s, c, 'a', ST_FA, "in literal false (expecting 'a')");
	case ST_FA:
		return lit(s, c, 'l', ST_FAL, "in literal false (expecting 'l')");
	case ST_FAL:
		return lit(s, c, 's', ST_FALS, "in literal false (expecting 's')");
	case ST_FALS:
		return lit(s, c, 'e', ST_END_VALUE, "in literal false (expecting 'e')");
	case ST_N:
		return lit(s, c, 'u', ST_NU, "in literal null (expecting 'u')");
	case ST_NU:
		return lit(s, c, 'l', ST_NUL, "in literal null (expecting 'l')");
	case ST_NUL:
		return lit(s, c, 'l', ST_END_VALUE, "in literal null (expecting 'l')");
	case ST_ERROR:
		break;
	}
	return SC_ERROR;
}

/*
 * Runs the scanner over s from i. Inside strings it skips plain bytes in a
 * tight loop: that is where the bulk of a large request is.
 * Stops after the byte that completes the top-level value when stop_at_end
 * (the Decoder), else runs to the end. Returns the scan result of the last
 * step and the index after it in *ret_i.
 */
static enum scan_ret run(struct scanner *s, const char *str, size_t len,
			 size_t i, int stop_at_end, size_t *ret_i)
{
	enum scan_ret r = SC_CONTINUE;
	while (i < len) {
		if (s->st == ST_IN_STRING) {
			while (i < len) {
				unsigned char c = (unsigned char)str[i];
				if (c == '"' || c == '\\' || c < 0x20)
					break;
				i++;
			}
			if (i == len)
				break;
		}
		unsigned char c = (unsigned char)str[i];
		r = step(s, c);
		if (r == SC_ERROR) {
			*ret_i = i;
			return r;
		}
		if (stop_at_end) {
			/* A closing bracket ends the value at once; a number,
			 * literal or string ends on the next byte (Go's
			 * Decoder: scanEnd means "the byte before"). */
			if (r == SC_END_VALUE && s->end_top) {
				*ret_i = i + 1;
				return SC_END;
			}
			if (r == SC_END) {
				*ret_i = i;
				return SC_END;
			}
		}
		i++;
	}
	*ret_i = i;
	return r;
}

int gojson_decode_first(const char *str, size_t len, size_t *ret_start,
			size_t *ret_end, char *err)
{
	unsigned char *stack = malloc(GOJSON_MAX_DEPTH + 1);
	struct scanner s = { ST_BEGIN_VALUE, 0, 0, stack, err };
	size_t start = gojson_skip_ws(str, len, 0), end;
	int ret;

	if (!stack) {
		snprintf(err, GOJSON_ERRMAX, "out of memory");
		return -ENOMEM;
	}
	if (start == len) {
		free(stack);
		return 1;
	}
	enum scan_ret r = run(&s, str, len, start, 1, &end);
	if (r == SC_ERROR) {
		ret = -EINVAL;
	} else if (r == SC_END) {
		ret = 0;
	} else if (step(&s, ' ') == SC_END) {
		/* Input ended right after a number or literal. */
		end = len;
		ret = 0;
	} else {
		snprintf(err, GOJSON_ERRMAX, "unexpected EOF");
		ret = -EINVAL;
	}
	free(stack);
	if (ret == 0) {
		*ret_start = start;
		*ret_end = end;
	}
	return ret;
}

int gojson_check(const char *str, size_t len, char *err)
{
	unsigned char *stack = malloc(GOJSON_MAX_DEPTH + 1);
	struct scanner s = { ST_BEGIN_VALUE, 0, 0, stack, err };
	size_t end;

	if (!stack) {
		snprintf(err, GOJSON_ERRMAX, "out of memory");
		return -ENOMEM;
	}
	enum scan_ret r = run(&s, str, len, 0, 0, &end);
	int ret = 0;
	if (r == SC_ERROR || s.st == ST_ERROR) {
		ret = -EINVAL;
	} else if (!s.end_top) {
		/* Go's scanner.eof(): one more space, then give up. */
		if (step(&s, ' ') != SC_ERROR && !s.end_top)
			snprintf(err, GOJSON_ERRMAX, "unexpected end of JSON input");
		if (!s.end_top)
			ret = -EINVAL;
	}
	free(stack);
	return ret;
}

size_t gojson_skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && is_space((unsigned char)s[i]))
		i++;
	return i;
}

static size_t skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

size_t gojson_skip(const char *s, size_t len, size_t i)
{
	size_t depth = 0;

	do {
		if (i >= len)
			return len;
		char c = s[i];
		if (c == '"') {
			i = skip_string(s, len, i);
		} else if (c == '{' || c == '[') {
			depth++;
			i++;
		} else if (c == '}' || c == ']') {
			depth--;
			i++;
		} else if (c == ',' || c == ':' || is_space((unsigned char)c)) {
			i++;
		} else {
			/* number or literal: up to the next delimiter */
			while (i < len && !strchr(",:]} \t\r\n", s[i]))
				i++;
		}
	} while (depth > 0);
	return i;
}

/* Go's utf8.DecodeRune: the rune, or -1 (RuneError, width 1). */
static int32_t utf8_decode(const unsigned char *s, size_t len, size_t *ret_w)
{
	unsigned char c = s[0];
	int32_t r;
	size_t w;

	*ret_w = 1;
	if (c < 0x80)
		return c;
	if (c < 0xc2)
		return -1;
	if (c < 0xe0) {
		w = 2;
		r = c & 0x1f;
	} else if (c < 0xf0) {
		w = 3;
		r = c & 0x0f;
	} else if (c < 0xf5) {
		w = 4;
		r = c & 0x07;
	} else {
		return -1;
	}
	if (len < w)
		return -1;
	for (size_t k = 1; k < w; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		r = r << 6 | (s[k] & 0x3f);
	}
	if ((w == 3 && r < 0x800) || (w == 4 && (r < 0x10000 || r > 0x10ffff)) ||
	    (r >= 0xd800 && r <= 0xdfff))
		return -1;
	*ret_w = w;
	return r;
}

static size_t utf8_encode(char *out, int32_t r)
{
	if (r < 0x80) {
		out[0] = (char)r;
		return 1;
	}
	if (r < 0x800) {
		out[0] = (char)(0xc0 | (r >> 6));
		out[1] = (char)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		out[0] = (char)(0xe0 | (r >> 12));
		out[1] = (char)(0x80 | ((r >> 6) & 0x3f));
		out[2] = (char)(0x80 | (r & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (r >> 18));
	out[1] = (char)(0x80 | ((r >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((r >> 6) & 0x3f));
	out[3] = (char)(0x80 | (r & 0x3f));
	return 4;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* Go's getu4: the \uXXXX escape at s, or -1. */
static int32_t getu4(const char *s, size_t len)
{
	if (len < 6 || s[0] != '\\' || s[1] != 'u')
		return -1;
	int32_t r = 0;
	for (int k = 2; k < 6; k++) {
		if (!is_hex((unsigned char)s[k]))
			return -1;
		r = r << 4 | hexval(s[k]);
	}
	return r;
}

size_t gojson_unquote(const char *s, size_t len, char *out, int *ret_plain)
{
	const char *p = s + 1;
	size_t n = len - 2, w = 0, r = 0;
	int plain = 1;

	while (r < n) {
		unsigned char c = (unsigned char)p[r];
		if (c == '\\') {
			plain = 0;
			char e = p[r + 1];
			switch (e) {
			case 'b': out[w++] = '\b'; r += 2; continue;
			case 'f': out[w++] = '\f'; r += 2; continue;
			case 'n': out[w++] = '\n'; r += 2; continue;
			case 'r': out[w++] = '\r'; r += 2; continue;
			case 't': out[w++] = '\t'; r += 2; continue;
			case 'u': break;
			default: out[w++] = e; r += 2; continue;
			}
			int32_t rr = getu4(p + r, n - r);
			r += 6;
			if (rr >= 0xd800 && rr < 0xe000) {
				int32_t rr1 = getu4(p + r, n - r);
				if (rr < 0xdc00 && rr1 >= 0xdc00 && rr1 < 0xe000) {
					rr = 0x10000 + ((rr - 0xd800) << 10) +
					     (rr1 - 0xdc00);
					r += 6;
				} else {
					rr = 0xfffd;
				}
			}
			w += utf8_encode(out + w, rr);
		} else if (c < 0x80) {
			out[w++] = (char)c;
			r++;
		} else {
			size_t width;
			plain = 0;
			int32_t rr = utf8_decode((const unsigned char *)p + r,
						 n - r, &width);
			if (rr < 0) {
				w += utf8_encode(out + w, 0xfffd);
				r++;
			} else {
				memcpy(out + w, p + r, width);
				w += width;
				r += width;
			}
		}
	}
	if (ret_plain)
		*ret_plain = plain;
	return w;
}

void gojson_quote(struct jbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, start = 0;

	jbuf_putc(b, '"');
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' &&
			    c != '>' && c != '&') {
				i++;
				continue;
			}
			jbuf_add(b, s + start, i - start);
			switch (c) {
			case '\\': jbuf_add(b, "\\\\", 2); break;
			case '"': jbuf_add(b, "\\\"", 2); break;
			case '\n': jbuf_add(b, "\\n", 2); break;
			case '\r': jbuf_add(b, "\\r", 2); break;
			case '\t': jbuf_add(b, "\\t", 2); break;
			default: {
				char u[6] = { '\\', 'u', '0', '0', hex[c >> 4],
					      hex[c & 15] };
				jbuf_add(b, u, 6);
			}
			}
			start = ++i;
			continue;
		}
		size_t w;
		int32_t r = utf8_decode((const unsigned char *)s + i, len - i, &w);
		if (r < 0 || r == 0x2028 || r == 0x2029) {
			jbuf_add(b, s + start, i - start);
			if (r < 0)
				jbuf_add(b, "\\ufffd", 6);
			else
				jbuf_add(b, r == 0x2028 ? "\\u2028" : "\\u2029", 6);
			i += w;
			start = i;
			continue;
		}
		i += w;
	}
	jbuf_add(b, s + start, len - start);
	jbuf_putc(b, '"');
}

/* Approximates unicode.IsPrint for the runes an enum name may carry. */
static int go_isprint(int32_t r)
{
	if (r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0xa0) || r == 0xad)
		return 0;
	if (r == 0x2028 || r == 0x2029 || r == 0xfeff || (r >= 0xe000 && r <= 0xf8ff))
		return 0;
	return 1;
}

void go_quote(struct jbuf *b, const char *s, size_t len)
{
	size_t i = 0;

	jbuf_putc(b, '"');
	while (i < len) {
		size_t w;
		int32_t r = utf8_decode((const unsigned char *)s + i, len - i, &w);
		if (r < 0) {
			jbuf_printf(b, "\\x%02x", (unsigned char)s[i]);
			i++;
			continue;
		}
		i += w;
		switch (r) {
		case '"': jbuf_add(b, "\\\"", 2); continue;
		case '\\': jbuf_add(b, "\\\\", 2); continue;
		case '\a': jbuf_add(b, "\\a", 2); continue;
		case '\b': jbuf_add(b, "\\b", 2); continue;
		case '\f': jbuf_add(b, "\\f", 2); continue;
		case '\n': jbuf_add(b, "\\n", 2); continue;
		case '\r': jbuf_add(b, "\\r", 2); continue;
		case '\t': jbuf_add(b, "\\t", 2); continue;
		case '\v': jbuf_add(b, "\\v", 2); continue;
		}
		if (go_isprint(r))
			jbuf_add(b, s + i - w, w);
		else if (r < 0x80)
			jbuf_printf(b, "\\x%02x", (unsigned)r);
		else if (r < 0x10000)
			jbuf_printf(b, "\\u%04x", (unsigned)r);
		else
			jbuf_printf(b, "\\U%08x", (unsigned)r);
	}
	jbuf_putc(b, '"');
}
