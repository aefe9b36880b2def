/* perf/fsync-probe.c: the cost of one device round trip on this filesystem, the yardstick of the commit
 * path (docs/PERF-NOTES.md; the goals in perf/commit-latency.sh are ratios to it).
 *
 * Usage: fsync-probe FILE N MODE   (MODE: fdatasync | dsync-direct)
 * Prepares FILE as the spool prepares a segment: 64 MiB allocated and already written (so no write
 * allocates blocks or converts unwritten extents, which would add a journal commit to every sync), then
 * times N operations, one in flight, at successive 4 KiB offsets:
 *   fdatasync      pwrite 4 KiB into the page cache, then fdatasync (the time is the fdatasync alone);
 *   dsync-direct   pwrite 4 KiB through an O_DIRECT|O_DSYNC descriptor (the whole pwrite is timed).
 * Prints one line: "mode=M n=N p50_us=X p99_us=Y mean_us=Z ops_per_s=W" (ops/s counts the whole loop).
 * It does not measure concurrency (several in flight) or anything but 4 KiB. Fails with a message on
 * stderr and exit status 1 on any error (including a filesystem that refuses O_DIRECT, such as tmpfs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_BYTES (64L << 20)
#define BLOCK 4096L

static void die(const char *what) { fprintf(stderr, "fsync-probe: %s: %s\n", what, strerror(errno)); exit(1); }

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Allocated and written once, then synced: what a spool segment looks like after its first pass. */
static void prepare(const char *path, char *buf) {
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size == FILE_BYTES) return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("open for preparing");
    if (posix_fallocate(fd, 0, FILE_BYTES) != 0) die("posix_fallocate");
    for (long off = 0; off < FILE_BYTES; off += BLOCK)
        if (pwrite(fd, buf, BLOCK, off) != BLOCK) die("pwrite while preparing");
    if (fsync(fd) != 0) die("fsync while preparing");
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: fsync-probe FILE N fdatasync|dsync-direct\n"); return 2; }
    long n = strtol(argv[2], NULL, 10);
    int direct = strcmp(argv[3], "dsync-direct") == 0;
    if (n < 1 || n > FILE_BYTES / BLOCK || (!direct && strcmp(argv[3], "fdatasync") != 0)) {
        fprintf(stderr, "fsync-probe: N must be 1..%ld and MODE fdatasync or dsync-direct\n", FILE_BYTES / BLOCK);
        return 2;
    }
    char *buf;
    if (posix_memalign((void **)&buf, BLOCK, BLOCK) != 0) { fprintf(stderr, "fsync-probe: out of memory\n"); return 1; }
    memset(buf, 'x', BLOCK);
    prepare(argv[1], buf);

    int fd = open(argv[1], direct ? O_WRONLY | O_DIRECT | O_DSYNC : O_WRONLY);
    if (fd < 0) die(direct ? "open O_DIRECT|O_DSYNC" : "open");
    double *t = malloc(sizeof(double) * n);
    if (t == NULL) { fprintf(stderr, "fsync-probe: out of memory\n"); return 1; }
    double start = now_us();
    for (long i = 0; i < n; i++) {
        buf[0] = (char)i;   /* a changed block each time, so nothing is skipped as already clean */
        double t0;
        if (direct) {
            t0 = now_us();
            if (pwrite(fd, buf, BLOCK, i * BLOCK) != BLOCK) die("pwrite O_DIRECT|O_DSYNC");
        } else {
            if (pwrite(fd, buf, BLOCK, i * BLOCK) != BLOCK) die("pwrite");
            t0 = now_us();
            if (fdatasync(fd) != 0) die("fdatasync");
        }
        t[i] = now_us() - t0;
    }
    double total = now_us() - start, sum = 0;
    for (long i = 0; i < n; i++) sum += t[i];
    qsort(t, n, sizeof(double), cmp);
    printf("mode=%s n=%ld p50_us=%.1f p99_us=%.1f mean_us=%.1f ops_per_s=%.0f\n", argv[3], n,
           t[(n - 1) / 2], t[(long)((n - 1) * 0.99)], sum / n, n / (total / 1e6));
    close(fd);
    free(t);
    free(buf);
    return 0;
}
