/* ascii.h — byte classes for the protocol parsers. <ctype.h> depends on the
 * locale and is undefined for negative chars, and every byte the parsers
 * see comes from the network, so they use these instead. */
#ifndef RTSPD_ASCII_H
#define RTSPD_ASCII_H

#include <stdbool.h>

static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline bool is_space(unsigned char c) { return c == ' ' || c == '\t'; }
static inline char to_lower(unsigned char c) { return (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c); }

/* 0..15, or -1 for a byte that is not a hex digit. */
static inline int hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

#endif
