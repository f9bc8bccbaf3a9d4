/* B9 delay line: two TAP devices, one in each of two network namespaces,
 * joined by this process, which forwards every Ethernet frame from one to the
 * other after holding it D ms (default 10), so a round trip between the two
 * namespaces takes 2 D.  Frames keep their order in each direction and none
 * is dropped: the queues grow as needed.  No bandwidth limit.
 *
 *   delayline [-d MS] NETNS_PATH_A IFNAME_A NETNS_PATH_B IFNAME_B
 *
 * NETNS_PATH is a network namespace file such as /run/netns/jsdb9a; the TAP
 * device IFNAME is created inside it (a TAP belongs to the namespace in which
 * /dev/net/tun was opened).  The devices exist while this process runs and
 * vanish when it exits.  Prints "ready" on stdout once both exist; on SIGTERM
 * or SIGINT prints its counters on stderr and exits.  The kernel here has no
 * netem, hence this.  Build: cc -O2 -o delayline delayline.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

struct frame {
    struct frame *next;
    int64_t due_ns;
    size_t len;
    unsigned char data[];
};

struct dir {
    const char *name;
    int in, out;              /* read frames from in, write them to out */
    struct frame *head, *tail;
    size_t queued, max_queued;
    uint64_t frames, bytes, late_max_ns, late_sum_ns;
};

#define SPIN_NS 200000 /* poll without sleeping in the last 200 us before a frame is due */

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "delayline: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int open_tap(const char *netns, const char *ifname) {
    int ns = open(netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0) die(netns);
    if (setns(ns, CLONE_NEWNET) < 0) die("setns");
    close(ns);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) die("/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    /* No IFF_VNET_HDR: the kernel segments and checksums every frame before
     * handing it over, so what we read is exactly what goes on the wire. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
    return fd;
}

/* Read every frame waiting on d->in and queue it, due D from now. */
static void take(struct dir *d, int64_t delay_ns) {
    unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(d->in, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            die("read");
        }
        if (n == 0) return;
        struct frame *f = malloc(sizeof *f + (size_t)n);
        if (!f) die("malloc");
        f->next = NULL;
        f->due_ns = now_ns() + delay_ns;
        f->len = (size_t)n;
        memcpy(f->data, buf, (size_t)n);
        if (d->tail) d->tail->next = f; else d->head = f;
        d->tail = f;
        if (++d->queued > d->max_queued) d->max_queued = d->queued;
    }
}

/* Write every frame that is due; a frame that cannot go yet stays first. */
static void give(struct dir *d) {
    int64_t t = now_ns();
    while (d->head && d->head->due_ns <= t) {
        struct frame *f = d->head;
        ssize_t n = write(d->out, f->data, f->len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == ENOBUFS) return;  /* retry at the next wake-up */
            if (errno == EIO) {  /* device down (not yet up): keep waiting, never drop silently */
                return;
            }
            die("write");
        }
        uint64_t late = (uint64_t)(t - f->due_ns);
        if (late > d->late_max_ns) d->late_max_ns = late;
        d->late_sum_ns += late;
        d->frames++;
        d->bytes += f->len;
        d->head = f->next;
        if (!d->head) d->tail = NULL;
        d->queued--;
        free(f);
        t = now_ns();
    }
}

int main(int argc, char **argv) {
    double delay_ms = 10;
    int opt;
    while ((opt = getopt(argc, argv, "d:")) != -1) {
        if (opt == 'd') delay_ms = atof(optarg);
        else goto usage;
    }
    if (argc - optind != 4) {
    usage:
        fprintf(stderr, "usage: delayline [-d MS] NETNS_PATH_A IFNAME_A NETNS_PATH_B IFNAME_B\n");
        return 2;
    }
    int64_t delay_ns = (int64_t)(delay_ms * 1e6);
    prctl(PR_SET_TIMERSLACK, 1UL);  /* wake up within ~1 us of a frame's due time, not 50 us */
    /* On a busy 2-CPU VM an ordinary process wakes up hundreds of us late:
     * run real-time (root) so frames leave on time, and spin the last SPIN_NS
     * before a due time instead of trusting the timer for it. */
    struct sched_param sp = {.sched_priority = 10};
    int rt = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
    if (rt) mlockall(MCL_CURRENT | MCL_FUTURE);
    int a = open_tap(argv[optind], argv[optind + 1]);
    int b = open_tap(argv[optind + 2], argv[optind + 3]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct dir d[2] = {{.name = "a->b", .in = a, .out = b}, {.name = "b->a", .in = b, .out = a}};
    printf("ready%s\n", rt ? "" : " (not real-time)");
    fflush(stdout);
    while (!stop) {
        int64_t next = -1;
        for (int i = 0; i < 2; i++)
            if (d[i].head && (next < 0 || d[i].head->due_ns < next)) next = d[i].head->due_ns;
        struct timespec ts, *tp = NULL;
        if (next >= 0) {
            int64_t w = next - now_ns() - SPIN_NS;
            if (w < 0) w = 0;
            /* a frame that could not be written (EAGAIN) is retried after 100 us */
            ts.tv_sec = w / 1000000000;
            ts.tv_nsec = w % 1000000000;
            tp = &ts;
        }
        struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
        int r = ppoll(p, 2, tp, NULL);
        if (r < 0 && errno != EINTR) die("ppoll");
        if (r > 0) {
            if (p[0].revents & POLLIN) take(&d[0], delay_ns);
            if (p[1].revents & POLLIN) take(&d[1], delay_ns);
            if ((p[0].revents | p[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) {
                fprintf(stderr, "delayline: a TAP device went away\n");
                break;
            }
        }
        for (int i = 0; i < 2; i++) give(&d[i]);
        /* a frame stuck on EAGAIN/EIO at its due time: do not spin, retry shortly */
        for (int i = 0; i < 2; i++)
            if (d[i].head && d[i].head->due_ns + 100000 < now_ns()) {
                struct timespec s = {0, 100000};
                nanosleep(&s, NULL);
                break;
            }
    }
    for (int i = 0; i < 2; i++)
        fprintf(stderr, "delayline: %s: %llu frames, %llu bytes, max %zu queued, left %zu, late mean %.1f us max %.1f us\n",
                d[i].name, (unsigned long long)d[i].frames, (unsigned long long)d[i].bytes, d[i].max_queued,
                d[i].queued, d[i].frames ? d[i].late_sum_ns / 1e3 / d[i].frames : 0.0, d[i].late_max_ns / 1e3);
    return 0;
}
