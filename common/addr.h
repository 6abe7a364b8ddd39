/* addr.h — socket addresses as text, the one spelling every log line and
 * IPC message uses: "1.2.3.4:5678", "[::1]:5678". Pure functions. */
#ifndef RTSPD_ADDR_H
#define RTSPD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Writes ss as "ip:port" ("[ip]:port" for IPv6, "?" for anything else). */
void addr_format(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
