/* config.h — reading rtspd's configuration file.
 *
 * The file is the XML format of the "Happytime RTSP Server" (rtspserver.cfg)
 * plus our extensions; docs/CONFIG.md describes every node. This module turns
 * such a file into a struct rtspd_config (config-t.h) and checks it: an
 * unknown node, a value out of range or a malformed file is refused with one
 * line naming the file, the line and the node, so that the master can refuse
 * to start (or, on reload, keep the old configuration).
 *
 * Ownership:
 *   - config_defaults(), config_load() and config_load_buffer() fill a struct
 *     the caller provides. They overwrite it without freeing what was in it.
 *   - Whoever holds the struct owns the heap arrays inside it (users, outputs,
 *     proxies, pushers) and releases them with config_free().
 *   - On failure the struct is left freed and zeroed, so config_free() on it
 *     is harmless and nothing leaks.
 *
 * Thread safety: libxml2's error handlers are per thread, and this module
 * only swaps them for the duration of one parse, so different threads may
 * load configurations at the same time.
 */
#ifndef RTSPD_CONFIG_H
#define RTSPD_CONFIG_H

#include <stddef.h>

#include "common/config-t.h"

/* Largest configuration file accepted, in bytes. */
#define CONFIG_MAX_BYTES (4 * 1024 * 1024)

/* Fill *c with the built-in defaults (what a file with an empty <config>
 * gives). Nothing is allocated. */
void config_defaults(struct rtspd_config *c);

/* Read and check the file at `path`. Returns 0, or a negative errno:
 * -EINVAL for bad content, -ENOENT / -EACCES / ... when the file cannot be
 * read, -EFBIG above CONFIG_MAX_BYTES, -ENOMEM. On failure `err` (if not
 * NULL) holds one line, e.g.
 *   "rtspserver.cfg:12: <rtsp_port>: 70000 is out of range 1..65535". */
int config_load(const char *path, struct rtspd_config *out, char *err, size_t errlen);

/* The same for a file already in memory. `name` is what messages call it
 * and what source_path records (may be NULL). */
int config_load_buffer(const char *buf, size_t len, const char *name,
		       struct rtspd_config *out, char *err, size_t errlen);

/* Free the arrays inside *c and zero their counts; safe to call twice. */
void config_free(struct rtspd_config *c);

/* The multicast group (dotted IPv4, in 232.0.0.0/8) and first port of
 * stream number `index`: the group base plus index, the port base plus
 * CFG_MCAST_PORTS * index, both wrapping inside their ranges. Returns 0,
 * -EINVAL for a base that is not in 232.0.0.0/8, -ENOSPC if len is short. */
int config_multicast_address(const struct rtspd_config *c, unsigned index, char *group, size_t len, int *port);

/* Call emit(feature, arg) once for every feature that *c asks for and this
 * build does not implement yet (e.g. "rtsps_enable", "proxies"). Returns how
 * many there were. emit may be NULL to only count them. */
int config_unsupported(const struct rtspd_config *c,
		       void (*emit)(const char *feature, void *arg), void *arg);

#endif
