/* route.h — which stream a request URL names. The master routes a new
 * connection with it and a worker checks later requests against it, so
 * both must agree: this is the one place that decides. Pure functions. */
#ifndef RTSPD_ROUTE_H
#define RTSPD_ROUTE_H

#include <stdbool.h>

#include "proto/url.h"

#define ROUTE_KEY_MAX 1100

struct route {
	int  kind;                  /* enum source_kind (ipc-t.h) */
	bool live;                  /* one broadcast through the ring */
	char path[1024];            /* relative path under media_dir (files) */
	char key[ROUTE_KEY_MAX];    /* worker identity: path, plus "?mode=live" for live files */
};

/* default_live: the config's <file_mode> is live. Returns 0, or -ENOENT for a
 * URL that names no stream (the root, "*"). */
int route_from_url(const struct rtsp_url *u, bool default_live, struct route *r);

#endif
