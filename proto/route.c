/* route.c — see route.h. */
#include "proto/route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/ipc-t.h"

int route_from_url(const struct rtsp_url *u, bool default_live, struct route *r)
{
	memset(r, 0, sizeof *r);
	if (u->asterisk || !u->path[0])
		return -ENOENT;
	snprintf(r->path, sizeof r->path, "%s", u->path);
	if (!strcmp(u->path, "test")) {
		r->kind = SOURCE_TEST;
		r->live = true;
		snprintf(r->key, sizeof r->key, "test");
		return 0;
	}
	r->kind = SOURCE_FILE;
	char mode[16];
	r->live = default_live;
	if (url_query_get(u->query, "mode", mode, sizeof mode) == 0) {
		if (!strcasecmp(mode, "live"))
			r->live = true;
		else if (!strcasecmp(mode, "ondemand") || !strcasecmp(mode, "vod"))
			r->live = false;
	}
	snprintf(r->key, sizeof r->key, "%s%s", u->path, r->live ? "?mode=live" : "");
	return 0;
}
