/* addr.c — see addr.h. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

void addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
	} else if (len) {
		snprintf(buf, len, "?");
	}
}
