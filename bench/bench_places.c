/* How the outcome histories of places (engine/network.h) grow with cardinality: feeds
 * OUTCOMES late/on-time outcomes and as many deliveries over D distinct destinations
 * (5-digit postal codes, Zipf-like popularity, 200 origins so lanes number up to 200 x D),
 * then times the network view every snapshot reads and reports peak memory.
 * usage: bench_places D [OUTCOMES]   (default 1,000,000 outcomes) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/network.h"
#include "base/log.h"

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static uint64_t rng = 88172645463325252ULL;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* destination index in [0, d) with popularity ~ 1 / rank */
static long zipf(long d)
{
    return (long)floor(exp(uniform() * log((double)d + 1))) - 1;
}

static void place(struct drisk_shipment *sh, long d)
{
    long dest = zipf(d);
    snprintf(sh->destination, sizeof sh->destination, "%05ld", 10000 + dest % 89999 +
             (dest / 89999) * 100000);
    snprintf(sh->origin, sizeof sh->origin, "O%03d", (int)(uniform() * 200));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_places D [OUTCOMES]\n");
        return 2;
    }
    long d = atol(argv[1]), n = argc > 2 ? atol(argv[2]) : 1000000;
    if (d < 1 || n < 1)
        return 2;
    long rss0 = peak_rss_kb();
    struct drisk_network *net = drisk_network_create();
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.carrier, sizeof sh.carrier, "apex");
    snprintf(sh.service, sizeof sh.service, "ground");
    snprintf(sh.merchant, sizeof sh.merchant, "m1");
    int64_t t0 = 1700000000;
    double a = drisk_monotonic_s();
    for (long i = 0; i < n; i++) {
        place(&sh, d);
        sh.promised_at = t0 + i * 10;
        sh.delivered_at = sh.promised_at + (int64_t)((uniform() * 2 - 1) * 86400);
        if (drisk_network_on_outcome(net, &sh, NULL, 0, uniform() < 0.15, sh.promised_at) ||
            drisk_network_on_delivered(net, &sh, NULL, 0)) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
    }
    double b = drisk_monotonic_s();
    struct drisk_network_view v;
    double sum = 0;
    long views = 1000000;
    for (long i = 0; i < views; i++) {
        place(&sh, d);
        drisk_network_view(net, &sh, 0, 0, t0 + n * 10, &v);
        sum += v.cat[DRISK_CAT_LANE].late_rate;
    }
    double c = drisk_monotonic_s();
    printf("{\"destinations\": %ld, \"outcomes\": %ld, \"feed_us\": %.3f, \"view_us\": %.3f, "
           "\"peak_rss_mib\": %.1f, \"checksum\": %.3f}\n", d, n, (b - a) / (double)n * 1e6 / 2,
           (c - b) / (double)views * 1e6, (double)(peak_rss_kb() - rss0) / 1024.0, sum / views);
    drisk_network_free(net);
    return 0;
}
