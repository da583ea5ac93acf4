/* Go-compatible standard base64: encoding, and decoding with Go's error offsets. */
#include <errno.h>

#include "base64.h"

static const char enc_tab[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0xff: not in the alphabet. Built from enc_tab on first use. */
static uint8_t dec_tab[256];
static int dec_ready;

static void dec_init(void)
{
	for (int i = 0; i < 256; i++)
		dec_tab[i] = 0xff;
	for (int i = 0; i < 64; i++)
		dec_tab[(uint8_t)enc_tab[i]] = (uint8_t)i;
	dec_ready = 1;
}

size_t base64_encode(char *dst, const uint8_t *src, size_t len)
{
	char *p = dst;
	size_t i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 |
			     src[i + 2];
		*p++ = enc_tab[v >> 18];
		*p++ = enc_tab[(v >> 12) & 63];
		*p++ = enc_tab[(v >> 6) & 63];
		*p++ = enc_tab[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)src[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)src[i + 1] << 8;
		*p++ = enc_tab[v >> 18];
		*p++ = enc_tab[(v >> 12) & 63];
		*p++ = i + 1 < len ? enc_tab[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	return (size_t)(p - dst);
}

static int is_nl(char c)
{
	return c == '\n' || c == '\r';
}

/*
 * One 4-character quantum starting at *si, following Go's decodeQuantum
 * step by step so that the error offsets match. Returns the number of bytes
 * written to dst, or -1 with *bad set.
 */
static int quantum(uint8_t *dst, const char *src, size_t len, size_t *si,
		   size_t *bad)
{
	uint8_t dbuf[4] = { 0 };
	int dlen = 4;
	size_t i = *si;

	for (int j = 0; j < 4; j++) {
		if (i == len) {
			if (j == 0) {
				*si = i;
				return 0;
			}
			/* Padding is mandatory: a short quantum is an error. */
			*bad = i - (size_t)j;
			return -1;
		}
		char in = src[i++];
		uint8_t out = dec_tab[(uint8_t)in];
		if (out != 0xff) {
			dbuf[j] = out;
			continue;
		}
		if (is_nl(in)) {
			j--;
			continue;
		}
		if (in != '=') {
			*bad = i - 1;
			return -1;
		}
		/* Padding: only after two or three characters. */
		switch (j) {
		case 0:
		case 1:
			*bad = i - 1;
			return -1;
		case 2:
			while (i < len && is_nl(src[i]))
				i++;
			if (i == len) {
				*bad = len;
				return -1;
			}
			if (src[i] != '=') {
				*bad = i - 1;
				return -1;
			}
			i++;
			break;
		}
		while (i < len && is_nl(src[i]))
			i++;
		if (i < len) {
			/* Trailing garbage after the padding. */
			*bad = i;
			return -1;
		}
		dlen = j;
		break;
	}

	uint32_t v = (uint32_t)dbuf[0] << 18 | (uint32_t)dbuf[1] << 12 |
		     (uint32_t)dbuf[2] << 6 | dbuf[3];
	uint8_t b0 = (uint8_t)(v >> 16), b1 = (uint8_t)(v >> 8), b2 = (uint8_t)v;
	switch (dlen) {
	case 4:
		dst[2] = b2;
		/* fallthrough */
	case 3:
		dst[1] = b1;
		/* fallthrough */
	case 2:
		dst[0] = b0;
	}
	*si = i;
	return dlen - 1;
}

int base64_decode(uint8_t *dst, const char *src, size_t len, size_t *ret_len,
		  size_t *ret_bad)
{
	size_t si = 0, n = 0, bad = 0;

	if (!dec_ready)
		dec_init();
	/* Fast path: whole quanta of alphabet characters. */
	while (len - si >= 4) {
		uint8_t a = dec_tab[(uint8_t)src[si]];
		uint8_t b = dec_tab[(uint8_t)src[si + 1]];
		uint8_t c = dec_tab[(uint8_t)src[si + 2]];
		uint8_t d = dec_tab[(uint8_t)src[si + 3]];
		if ((a | b | c | d) & 0xc0) /* 0xff marks a non-alphabet byte */
			break;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 |
			     (uint32_t)c << 6 | d;
		dst[n++] = (uint8_t)(v >> 16);
		dst[n++] = (uint8_t)(v >> 8);
		dst[n++] = (uint8_t)v;
		si += 4;
	}
	while (si < len) {
		int k = quantum(dst + n, src, len, &si, &bad);
		if (k < 0) {
			*ret_bad = bad;
			return -EINVAL;
		}
		n += (size_t)k;
	}
	*ret_len = n;
	return 0;
}
