/* The scoring server (drisk serve): HTTP JSON API v1 over libmicrohttpd (CONTRACT §6,
 * api/openapi.yaml). Start it, read its port, stop it; everything else is behind. */
#ifndef DRISK_SERVER_H
#define DRISK_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

struct drisk_server_options {
    const char *db_path;
    const char *host;       /* "127.0.0.1" */
    uint16_t port;          /* 0: any free port (read it back with drisk_server_port) */
    unsigned threads;       /* worker threads; 0: one per core */
    unsigned max_connections; /* 0: 1024 */
    unsigned timeout_s;     /* idle connection timeout; 0: 30 */
    unsigned max_connections_per_ip; /* open connections from one address; 0: 256 */
    unsigned header_timeout_s; /* a request's headers must be in this long after the
                             * connection (or its previous request) is ready; 0: 10 */
    size_t max_body;        /* bytes; 0: 1 MiB */
    double sweep_s;         /* re-score open shipments this often; 0: never; < 0: 300 */
    FILE *access_log;       /* one line per request, or NULL; control characters, quotes
                             * and spaces in the path escaped (\xHH) */
    int access_log_json;    /* the lines as JSON objects instead ({"ts", "ip", "method",
                             * "path", "status", "bytes", "ms", "merchant"}) */
    /* webhooks out (api/webhooks.h) */
    int webhook_allow_private;     /* endpoints on loopback / private addresses */
    double webhook_retry_base_s;   /* the first retry's delay; 0: 30 */
    double webhook_retry_for_s;    /* retry this long after the event; 0: 86400 */
    double webhook_timeout_s;      /* one attempt; 0: 10 */
};

struct drisk_server;

/* Opens the store, replays its history into the network statistics, loads the active
 * models and starts listening. */
enum drisk_status drisk_server_start(const struct drisk_server_options *opts,
                                     struct drisk_server **out, struct drisk_error *err);
uint16_t drisk_server_port(const struct drisk_server *srv);
/* Stops accepting, lets requests in flight finish, stops the sweep, closes the store. */
void drisk_server_stop(struct drisk_server *srv);

#endif
