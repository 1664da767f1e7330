/*
 * latencyfs: a passthrough FUSE file system whose replies arrive late.
 *
 *     latencyfs SOURCE MOUNTPOINT [-o OPTION[,OPTION...]]
 *
 * Every file and directory under SOURCE appears under MOUNTPOINT. Each read (and, when
 * asked, each open, lookup/getattr, write and fsync) is *performed at once* on the
 * backing file, and its *reply* is held until a deadline: the request's arrival time plus
 * a latency drawn for it. Files are opened with FOPEN_DIRECT_IO, so the kernel's page
 * cache never answers a read: every read reaches this server and pays the latency, as
 * on a network file system. The harness that mounts it is benchmarks/latencyfs/__init__.py;
 * the design and the numbers are in docs/latencyfs.md.
 *
 * Glossary
 * --------
 * request    one message from the kernel (LOOKUP, READ...), handled by a session thread.
 * deadline   arrival time (CLOCK_MONOTONIC) + the latency drawn for the request.
 * pending    a reply built but not yet sent: the request, its deadline and what to send.
 * heap       the pendings, a binary min-heap ordered by deadline.
 * replier    the one thread that sends pendings whose deadline has passed.
 * lifeline   the server's stdin, a pipe whose write end only the mounting process holds.
 *
 * Threads and what each may touch
 * -------------------------------
 * session threads (libfuse's: the main thread with -o threads=1, else a pool)
 *     run the handlers: do the system call, build a pending, push it (heap_lock).
 *     They never sleep for a latency, so a few of them serve any number of requests in
 *     flight. They touch the node table under nodes_lock.
 * replier
 *     pops due pendings under heap_lock and sends them *outside* it (fuse_reply_* writes
 *     to /dev/fuse, which is safe from any thread), then frees them.
 * lifeline watcher
 *     blocks in read(0): end of file means the mounting process is gone (killed, even by
 *     SIGKILL), and the server ends itself the way SIGTERM ends it.
 * Counters are C11 atomics, read by any handler of the stats file.
 *
 * Ending (SIGTERM, SIGINT, SIGHUP, or the lifeline)
 * -------------------------------------------------
 * 1. libfuse's handler marks the session exited; the session loop returns.
 * 2. The replier is told to stop: it sends every pending at once (the kernel may already
 *    be gone; errors are ignored) and returns.
 * 3. fuse_session_unmount: the mount is gone before the process is. Only SIGKILL skips
 *    this; the mounting process then unmounts (fusermount3 -u), see __init__.py.
 * The aux threads block those signals, so a signal always lands on a session thread,
 * whose blocking read of /dev/fuse it interrupts (an aux thread catching it would leave
 * the session loop asleep until the next request).
 *
 * Rejected alternatives
 * ---------------------
 * - A sleeping thread per request (sleep, then reply): the 25-line mfusepy server
 *   did that and reached 4,580 reads/s of an ideal 16,000; a thread per request in flight
 *   costs a context switch per wake-up and a stack per request. One timer thread on a
 *   heap costs a heap push and pop per request.
 * - timerfd per request, or an epoll loop of our own: libfuse's session loop already
 *   owns /dev/fuse; a condition variable with an absolute CLOCK_MONOTONIC deadline is
 *   one timer for all requests.
 * - Sleeping *before* the system call: the latency would then be added to the backing
 *   file's time instead of covering it; a deadline from arrival models a remote server
 *   whose answer takes the latency however it spends it.
 * - Caching attributes or entries: a stat or open that is configured to wait must reach
 *   the server each time, so entry and attribute timeouts are 0.
 */

#define FUSE_USE_VERSION 312
#define _GNU_SOURCE

#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STATS_NAME ".latencyfs-stats"
#define STATS_SIZE 4096 /* what stat says of the stats file; reads return its text */

/* ---- options ------------------------------------------------------------------------ */

struct options {
    unsigned read_us, open_us, stat_us, write_us, fsync_us; /* latency per kind, us */
    char *dist;                                             /* "fixed" or "lognormal" */
    double sigma;                                           /* lognormal: sd of log */
    unsigned threads;                                       /* session threads */
    int lifeline;                                           /* watch stdin for EOF */
    int cache;                                              /* 1: no FOPEN_DIRECT_IO */
};

static struct options opt = {.read_us = 2000, .sigma = 0.5, .threads = 2};
static int lognormal;

#define OPT(t, p) {t, offsetof(struct options, p), 1}
static const struct fuse_opt option_spec[] = {
    OPT("read_us=%u", read_us),     OPT("open_us=%u", open_us),   OPT("stat_us=%u", stat_us),
    OPT("write_us=%u", write_us),   OPT("fsync_us=%u", fsync_us), OPT("dist=%s", dist),
    OPT("sigma=%lf", sigma),        OPT("threads=%u", threads),   OPT("lifeline", lifeline),
    OPT("cache", cache),            FUSE_OPT_END,
};

/* ---- counters (the stats file) ------------------------------------------------------ */

static struct {
    atomic_ullong lookups, getattrs, opens, reads, read_bytes, writes, write_bytes, fsyncs;
    atomic_ullong releases, errors, delayed, sent, late_ns_sum, late_ns_max;
    atomic_ullong in_flight, in_flight_max;
} stats;

static void note_max(atomic_ullong *slot, unsigned long long value)
{
    unsigned long long seen = atomic_load(slot);
    while (value > seen && !atomic_compare_exchange_weak(slot, &seen, value))
        ;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency draws -------------------------------------------------------------------- */

/* A per-thread xorshift64* generator: no lock, and draws of different threads differ. */
static __thread uint64_t rng_state;

static double uniform01(void)
{
    if (rng_state == 0)
        rng_state = now_ns() ^ ((uint64_t)syscall(SYS_gettid) << 32) ^ 0x9E3779B97F4A7C15u;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t x = rng_state * 0x2545F4914F6CDD1Du;
    return ((double)(x >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

/* The latency of one request: `us` fixed, or lognormal with median `us` (the mean is
 * us * exp(sigma^2 / 2); sigma 0.5 puts p99 at 3.2x the median, p99.9 at 4.7x). */
static uint64_t draw_ns(unsigned us)
{
    if (us == 0)
        return 0;
    double ns = (double)us * 1000.0;
    if (lognormal) {
        double z = sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
        ns *= exp(opt.sigma * z);
    }
    return (uint64_t)ns;
}

/* ---- the nodes: inode numbers the kernel knows, and the backing paths ----------------- */

struct node {
    dev_t dev;
    ino_t ino;
    char *path; /* relative to SOURCE; "." for the root */
    uint64_t nlookup;
};

static int source_fd = -1;
static struct node root_node = {.path = ".", .nlookup = 2};
static struct node stats_node = {.path = STATS_NAME, .nlookup = 2};
static void *node_tree; /* tsearch tree of struct node *, by (dev, ino) */
static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;

static int node_cmp(const void *a, const void *b)
{
    const struct node *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static struct node *node_of(fuse_ino_t id)
{
    return id == FUSE_ROOT_ID ? &root_node : (struct node *)(uintptr_t)id;
}

static fuse_ino_t id_of(struct node *n)
{
    return n == &root_node ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* The child `name` of `parent`, looked up once more (nlookup + 1); NULL on ENOMEM. */
static struct node *node_get(struct node *parent, const char *name, const struct stat *st)
{
    struct node key = {.dev = st->st_dev, .ino = st->st_ino};
    struct node *n = NULL;
    pthread_mutex_lock(&nodes_lock);
    void **found = tfind(&key, &node_tree, node_cmp);
    if (found != NULL) {
        n = *found;
    } else if (st->st_dev == root_node.dev && st->st_ino == root_node.ino) {
        n = &root_node;
    } else {
        n = calloc(1, sizeof *n);
        if (n != NULL) {
            n->dev = st->st_dev;
            n->ino = st->st_ino;
            if (strcmp(parent->path, ".") == 0)
                n->path = strdup(name);
            else if (asprintf(&n->path, "%s/%s", parent->path, name) < 0)
                n->path = NULL;
            if (n->path == NULL || tsearch(n, &node_tree, node_cmp) == NULL) {
                free(n->path);
                free(n);
                n = NULL;
            }
        }
    }
    if (n != NULL)
        n->nlookup++;
    pthread_mutex_unlock(&nodes_lock);
    return n;
}

static void node_forget(fuse_ino_t id, uint64_t count)
{
    struct node *n = node_of(id);
    if (n == &root_node || n == &stats_node)
        return;
    pthread_mutex_lock(&nodes_lock);
    n->nlookup -= count < n->nlookup ? count : n->nlookup;
    if (n->nlookup == 0) {
        tdelete(n, &node_tree, node_cmp);
        free(n->path);
        free(n);
    }
    pthread_mutex_unlock(&nodes_lock);
}

/* ---- pendings, the heap and the replier ----------------------------------------------- */

enum reply_kind { R_ERR, R_BUF, R_ENTRY, R_CREATE, R_ATTR, R_OPEN, R_WRITE };

struct pending {
    uint64_t due; /* CLOCK_MONOTONIC ns */
    fuse_req_t req;
    enum reply_kind kind;
    int err;                 /* R_ERR */
    char *buf;               /* R_BUF: owned, freed after sending */
    size_t len;              /* R_BUF: bytes; R_WRITE: count written */
    struct fuse_entry_param e; /* R_ENTRY, R_CREATE */
    struct stat st;          /* R_ATTR */
    struct fuse_file_info fi; /* R_OPEN, R_CREATE */
};

static struct pending **heap;
static size_t heap_len, heap_cap;
static int replier_stop;
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t heap_cond;

static void send_reply(struct pending *p)
{
    switch (p->kind) {
    case R_ERR:
        if (p->err != 0)
            atomic_fetch_add(&stats.errors, 1);
        fuse_reply_err(p->req, p->err);
        break;
    case R_BUF:
        fuse_reply_buf(p->req, p->buf, p->len);
        break;
    case R_ENTRY:
        fuse_reply_entry(p->req, &p->e);
        break;
    case R_CREATE:
        if (fuse_reply_create(p->req, &p->e, &p->fi) == -ENOENT)
            close((int)p->fi.fh); /* the opener was interrupted: no release will come */
        break;
    case R_ATTR:
        fuse_reply_attr(p->req, &p->st, 0.0);
        break;
    case R_OPEN:
        if (fuse_reply_open(p->req, &p->fi) == -ENOENT)
            close((int)p->fi.fh);
        break;
    case R_WRITE:
        fuse_reply_write(p->req, p->len);
        break;
    }
    free(p->buf);
    free(p);
}

static void heap_swap(size_t i, size_t j)
{
    struct pending *t = heap[i];
    heap[i] = heap[j];
    heap[j] = t;
}

/* Send `p` at arrival + `latency_ns`; at once (in this thread) when there is none. */
static void schedule(struct pending *p, uint64_t arrival, uint64_t latency_ns)
{
    if (latency_ns == 0) {
        send_reply(p);
        return;
    }
    p->due = arrival + latency_ns;
    atomic_fetch_add(&stats.delayed, 1);
    note_max(&stats.in_flight_max, atomic_fetch_add(&stats.in_flight, 1) + 1);
    pthread_mutex_lock(&heap_lock);
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 256;
        struct pending **grown = realloc(heap, cap * sizeof *grown);
        if (grown == NULL) { /* no room to wait: answer now rather than never */
            pthread_mutex_unlock(&heap_lock);
            atomic_fetch_sub(&stats.in_flight, 1);
            send_reply(p);
            return;
        }
        heap = grown;
        heap_cap = cap;
    }
    size_t i = heap_len++;
    heap[i] = p;
    while (i > 0 && heap[(i - 1) / 2]->due > heap[i]->due) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    if (i == 0) /* a new earliest deadline: the replier's wait is now too long */
        pthread_cond_signal(&heap_cond);
    pthread_mutex_unlock(&heap_lock);
}

static struct pending *heap_pop(void)
{
    struct pending *top = heap[0];
    heap[0] = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->due < heap[m]->due)
            m = l;
        if (r < heap_len && heap[r]->due < heap[m]->due)
            m = r;
        if (m == i)
            break;
        heap_swap(i, m);
        i = m;
    }
    return top;
}

#define BATCH 64

static void *replier(void *unused)
{
    (void)unused;
    /* The kernel may defer a timed wake-up by the thread's timer slack (50 us by
     * default) to batch it with others; replies are due to the microsecond. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    struct pending *due[BATCH];
    pthread_mutex_lock(&heap_lock);
    for (;;) {
        if (heap_len == 0) {
            if (replier_stop)
                break;
            pthread_cond_wait(&heap_cond, &heap_lock);
            continue;
        }
        uint64_t now = now_ns();
        if (heap[0]->due > now && !replier_stop) {
            struct timespec until = {.tv_sec = (time_t)(heap[0]->due / 1000000000u),
                                     .tv_nsec = (long)(heap[0]->due % 1000000000u)};
            pthread_cond_timedwait(&heap_cond, &heap_lock, &until);
            continue;
        }
        size_t n = 0;
        while (n < BATCH && heap_len > 0 && (heap[0]->due <= now || replier_stop))
            due[n++] = heap_pop();
        pthread_mutex_unlock(&heap_lock);
        for (size_t i = 0; i < n; i++) {
            uint64_t late = now_ns() - due[i]->due;
            if ((int64_t)late > 0) {
                atomic_fetch_add(&stats.late_ns_sum, late);
                note_max(&stats.late_ns_max, late);
            }
            atomic_fetch_add(&stats.sent, 1);
            atomic_fetch_sub(&stats.in_flight, 1);
            send_reply(due[i]);
        }
        pthread_mutex_lock(&heap_lock);
    }
    pthread_mutex_unlock(&heap_lock);
    return NULL;
}

static struct pending *pending_new(fuse_req_t req, enum reply_kind kind)
{
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    p->req = req;
    p->kind = kind;
    return p;
}

static void reply_err_after(fuse_req_t req, int err, uint64_t arrival, unsigned us)
{
    struct pending *p = pending_new(req, R_ERR);
    if (p != NULL) {
        p->err = err;
        schedule(p, arrival, draw_ns(us));
    }
}

/* ---- the stats file --------------------------------------------------------------------- */

static void stats_attr(struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = 1; /* the backing root's own number is unlikely to clash in practice */
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = STATS_SIZE;
    st->st_uid = getuid();
    st->st_gid = getgid();
}

static size_t stats_text(char *out, size_t size)
{
#define C(name) (unsigned long long)atomic_load(&stats.name)
    int n = snprintf(out, size,
                     "lookups %llu\ngetattrs %llu\nopens %llu\nreads %llu\nread_bytes %llu\n"
                     "writes %llu\nwrite_bytes %llu\nfsyncs %llu\nreleases %llu\n"
                     "errors %llu\ndelayed %llu\nsent %llu\nin_flight %llu\n"
                     "in_flight_max %llu\nlate_ns_sum %llu\nlate_ns_max %llu\n"
                     "read_us %u\nopen_us %u\nstat_us %u\nwrite_us %u\nfsync_us %u\n"
                     "dist %s\nsigma %g\nthreads %u\n",
                     C(lookups), C(getattrs), C(opens), C(reads), C(read_bytes), C(writes),
                     C(write_bytes), C(fsyncs), C(releases), C(errors), C(delayed), C(sent),
                     C(in_flight), C(in_flight_max), C(late_ns_sum), C(late_ns_max),
                     opt.read_us, opt.open_us, opt.stat_us, opt.write_us, opt.fsync_us,
                     lognormal ? "lognormal" : "fixed", opt.sigma, opt.threads);
#undef C
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- the handlers ----------------------------------------------------------------------- */

static int stat_of(struct node *n, struct stat *st)
{
    int res = n == &root_node ? fstat(source_fd, st)
                              : fstatat(source_fd, n->path, st, AT_SYMLINK_NOFOLLOW);
    return res < 0 ? errno : 0;
}

static void lfs_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Asynchronous direct I/O (io_submit, io_uring) is sent as background requests, of
     * which the kernel allows max_background in flight (12 by default): raise it so that
     * depth 32 and beyond reach this server. */
    conn->max_background = 1024;
    conn->congestion_threshold = 768;
    /* FUSE_CAP_ASYNC_DIO (asynchronous direct I/O sent as background requests) and
     * FUSE_CAP_PARALLEL_DIROPS are on by default where the kernel has them; `want` is
     * left alone: libfuse 3.17.0 refused a session whose file system wrote it directly
     * (libfuse issue #1171). */
}

static void lfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    uint64_t arrival = now_ns();
    struct pending *p = pending_new(req, R_ENTRY);
    if (p == NULL)
        return;
    struct node *dir = node_of(parent);
    if (dir == &root_node && strcmp(name, STATS_NAME) == 0) {
        p->e.ino = (fuse_ino_t)(uintptr_t)&stats_node;
        stats_attr(&p->e.attr);
        schedule(p, arrival, 0); /* the harness's window on the server: never late */
        return;
    }
    atomic_fetch_add(&stats.lookups, 1); /* requests of the stats file are not counted */
    char *path = NULL;
    struct stat st;
    int err = 0;
    if (strcmp(dir->path, ".") == 0)
        path = strdup(name);
    else if (asprintf(&path, "%s/%s", dir->path, name) < 0)
        path = NULL;
    if (path == NULL)
        err = ENOMEM;
    else if (fstatat(source_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        err = errno;
    free(path);
    if (err == 0) {
        struct node *n = node_get(dir, name, &st);
        if (n == NULL) {
            err = ENOMEM;
        } else {
            p->e.ino = id_of(n);
            p->e.attr = st;
        }
    }
    if (err != 0) {
        p->kind = R_ERR;
        p->err = err;
    }
    schedule(p, arrival, draw_ns(opt.stat_us));
}

static void lfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    node_forget(ino, nlookup);
    fuse_reply_none(req);
}

static void lfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        node_forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void lfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    uint64_t arrival = now_ns();
    struct pending *p = pending_new(req, R_ATTR);
    if (p == NULL)
        return;
    struct node *n = node_of(ino);
    if (n == &stats_node) {
        stats_attr(&p->st);
        schedule(p, arrival, 0);
        return;
    }
    atomic_fetch_add(&stats.getattrs, 1);
    int err = fi != NULL && n != &root_node ? (fstat((int)fi->fh, &p->st) < 0 ? errno : 0)
                                            : stat_of(n, &p->st);
    if (err != 0) {
        p->kind = R_ERR;
        p->err = err;
    }
    schedule(p, arrival, draw_ns(opt.stat_us));
}

static void lfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                        struct fuse_file_info *fi)
{
    /* Only the size (truncate, open with O_TRUNC): the workloads need nothing more. */
    struct node *n = node_of(ino);
    struct stat st;
    int err = 0;
    if (n == &stats_node || n == &root_node) {
        err = EPERM;
    } else if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                          FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
                          FUSE_SET_ATTR_CTIME)) {
        err = ENOTSUP;
    } else if (to_set & FUSE_SET_ATTR_SIZE) {
        int fd = fi != NULL ? (int)fi->fh : openat(source_fd, n->path, O_WRONLY);
        if (fd < 0 || ftruncate(fd, attr->st_size) < 0)
            err = errno;
        if (fi == NULL && fd >= 0)
            close(fd);
    }
    if (err == 0)
        err = stat_of(n, &st);
    if (err != 0)
        fuse_reply_err(req, err);
    else
        fuse_reply_attr(req, &st, 0.0);
}

static void lfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    uint64_t arrival = now_ns();
    struct pending *p = pending_new(req, R_OPEN);
    if (p == NULL)
        return;
    struct node *n = node_of(ino);
    p->fi = *fi;
    p->fi.direct_io = 1;
    if (n == &stats_node) {
        p->fi.fh = (uint64_t)-1;
        schedule(p, arrival, 0);
        return;
    }
    atomic_fetch_add(&stats.opens, 1);
    /* The backing file is read through its page cache: the latency is the one injected,
     * not the backing disk's (and O_DIRECT would want aligned buffers of ours). */
    int fd = openat(source_fd, n->path, fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT));
    if (fd < 0) {
        p->kind = R_ERR;
        p->err = errno;
    } else {
        p->fi.fh = (uint64_t)fd;
        p->fi.direct_io = !opt.cache;
    }
    schedule(p, arrival, draw_ns(opt.open_us));
}

static void lfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       struct fuse_file_info *fi)
{
    uint64_t arrival = now_ns();
    atomic_fetch_add(&stats.opens, 1);
    struct pending *p = pending_new(req, R_CREATE);
    if (p == NULL)
        return;
    struct node *dir = node_of(parent);
    char *path = NULL;
    int err = 0, fd = -1;
    if (strcmp(dir->path, ".") == 0)
        path = strdup(name);
    else if (asprintf(&path, "%s/%s", dir->path, name) < 0)
        path = NULL;
    if (path == NULL)
        err = ENOMEM;
    else if ((fd = openat(source_fd, path, (fi->flags | O_CREAT) & ~O_DIRECT, mode)) < 0)
        err = errno;
    else if (fstat(fd, &p->e.attr) < 0)
        err = errno;
    free(path);
    if (err == 0) {
        struct node *n = node_get(dir, name, &p->e.attr);
        if (n == NULL)
            err = ENOMEM;
        else
            p->e.ino = id_of(n);
    }
    if (err != 0) {
        if (fd >= 0)
            close(fd);
        p->kind = R_ERR;
        p->err = err;
    } else {
        p->fi = *fi;
        p->fi.fh = (uint64_t)fd;
        p->fi.direct_io = !opt.cache;
    }
    schedule(p, arrival, draw_ns(opt.open_us));
}

static void lfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    uint64_t arrival = now_ns();
    struct pending *p = pending_new(req, R_BUF);
    if (p == NULL)
        return;
    p->buf = malloc(size ? size : 1);
    if (p->buf == NULL) {
        p->kind = R_ERR;
        p->err = ENOMEM;
        schedule(p, arrival, 0);
        return;
    }
    if (node_of(ino) == &stats_node) {
        char text[STATS_SIZE];
        size_t len = stats_text(text, sizeof text);
        size_t from = (size_t)off < len ? (size_t)off : len;
        p->len = len - from < size ? len - from : size;
        memcpy(p->buf, text + from, p->len);
        schedule(p, arrival, 0);
        return;
    }
    atomic_fetch_add(&stats.reads, 1);
    ssize_t got = pread((int)fi->fh, p->buf, size, off);
    if (got < 0) {
        p->kind = R_ERR;
        p->err = errno;
    } else {
        p->len = (size_t)got;
        atomic_fetch_add(&stats.read_bytes, (unsigned long long)got);
    }
    schedule(p, arrival, draw_ns(opt.read_us));
}

static void lfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    uint64_t arrival = now_ns();
    struct pending *p = pending_new(req, R_WRITE);
    if (p == NULL)
        return;
    if (node_of(ino) == &stats_node) {
        p->kind = R_ERR;
        p->err = EBADF;
        schedule(p, arrival, 0);
        return;
    }
    atomic_fetch_add(&stats.writes, 1);
    ssize_t done = pwrite((int)fi->fh, buf, size, off);
    if (done < 0) {
        p->kind = R_ERR;
        p->err = errno;
    } else {
        p->len = (size_t)done;
        atomic_fetch_add(&stats.write_bytes, (unsigned long long)done);
    }
    schedule(p, arrival, draw_ns(opt.write_us));
}

static void lfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    uint64_t arrival = now_ns();
    if (node_of(ino) == &stats_node) {
        fuse_reply_err(req, 0);
        return;
    }
    atomic_fetch_add(&stats.fsyncs, 1);
    int fd = (int)fi->fh;
    int err = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
    reply_err_after(req, err, arrival, opt.fsync_us);
}

static void lfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (node_of(ino) != &stats_node) {
        atomic_fetch_add(&stats.releases, 1);
        close((int)fi->fh);
    }
    fuse_reply_err(req, 0);
}

static void lfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct node *dir = node_of(parent);
    char *path = NULL;
    int err = 0;
    if (strcmp(dir->path, ".") == 0)
        path = strdup(name);
    else if (asprintf(&path, "%s/%s", dir->path, name) < 0)
        path = NULL;
    if (path == NULL)
        err = ENOMEM;
    else if (unlinkat(source_fd, path, 0) < 0)
        err = errno;
    free(path);
    fuse_reply_err(req, err);
}

struct dir_handle {
    DIR *dp;
};

static void lfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n = node_of(ino);
    int fd = openat(source_fd, n->path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    struct dir_handle *d = malloc(sizeof *d);
    if (d == NULL || (d->dp = fdopendir(fd)) == NULL) {
        int err = d == NULL ? ENOMEM : errno;
        free(d);
        close(fd);
        fuse_reply_err(req, err);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        closedir(d->dp);
        free(d);
    }
}

static void lfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    (void)ino;
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    seekdir(d->dp, off); /* off: 0, or a telldir() value this handler returned before */
    size_t used = 0;
    for (;;) {
        long before = telldir(d->dp);
        errno = 0;
        struct dirent *ent = readdir(d->dp);
        if (ent == NULL)
            break;
        struct stat st = {.st_ino = ent->d_ino, .st_mode = (mode_t)DTTOIF(ent->d_type)};
        size_t need = fuse_add_direntry(req, buf + used, size - used, ent->d_name, &st,
                                        telldir(d->dp));
        if (need > size - used) { /* no room: the next call starts at this entry */
            seekdir(d->dp, before);
            break;
        }
        used += need;
    }
    if (errno != 0 && used == 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_buf(req, buf, used);
    free(buf);
}

static void lfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    closedir(d->dp);
    free(d);
    fuse_reply_err(req, 0);
}

static void lfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv;
    if (fstatvfs(source_fd, &sv) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
    .init = lfs_init,
    .lookup = lfs_lookup,
    .forget = lfs_forget,
    .forget_multi = lfs_forget_multi,
    .getattr = lfs_getattr,
    .setattr = lfs_setattr,
    .open = lfs_open,
    .create = lfs_create,
    .read = lfs_read,
    .write = lfs_write,
    .fsync = lfs_fsync,
    .release = lfs_release,
    .unlink = lfs_unlink,
    .opendir = lfs_opendir,
    .readdir = lfs_readdir,
    .releasedir = lfs_releasedir,
    .statfs = lfs_statfs,
};

/* ---- the lifeline and main -------------------------------------------------------------- */

static void *lifeline(void *unused)
{
    (void)unused;
    char byte;
    ssize_t got;
    do
        got = read(STDIN_FILENO, &byte, 1);
    while (got > 0 || (got < 0 && errno == EINTR));
    kill(getpid(), SIGTERM); /* the mounting process is gone: end as SIGTERM ends us */
    return NULL;
}

static int start_thread(pthread_t *thread, void *(*body)(void *))
{
    /* Signals must land on a session thread (see the header): block them here. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int err = pthread_create(thread, NULL, body, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s SOURCE MOUNTPOINT [-o read_us=N,open_us=N,stat_us=N,write_us=N,"
                "fsync_us=N,dist=fixed|lognormal,sigma=X,threads=N,lifeline,cache]\n",
                argv[0]);
        return 2;
    }
    const char *source = argv[1], *mountpoint = argv[2];
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    fuse_opt_add_arg(&args, argv[0]);
    for (int i = 3; i < argc; i++)
        fuse_opt_add_arg(&args, argv[i]);
    if (fuse_opt_parse(&args, &opt, option_spec, NULL) == -1)
        return 2;
    lognormal = opt.dist != NULL && strcmp(opt.dist, "lognormal") == 0;
    if (opt.dist != NULL && !lognormal && strcmp(opt.dist, "fixed") != 0) {
        fprintf(stderr, "latencyfs: dist must be fixed or lognormal, not %s\n", opt.dist);
        return 2;
    }
    if (opt.threads < 1 || opt.sigma < 0.0) {
        fprintf(stderr, "latencyfs: threads must be >= 1 and sigma >= 0\n");
        return 2;
    }
    source_fd = open(source, O_RDONLY | O_DIRECTORY);
    if (source_fd < 0 || fstat(source_fd, &(struct stat){0}) < 0) {
        fprintf(stderr, "latencyfs: %s: %s\n", source, strerror(errno));
        return 1;
    }
    struct stat root_st;
    fstat(source_fd, &root_st);
    root_node.dev = root_st.st_dev;
    root_node.ino = root_st.st_ino;

    /* The mount names the server's pid, so that a later mount can tell a stale one
     * (its server gone) from a live one: __init__.py's reap_stale. */
    char fsname[128];
    snprintf(fsname, sizeof fsname, "-ofsname=latencyfs:%ld,subtype=latencyfs",
             (long)getpid());
    fuse_opt_add_arg(&args, fsname);

    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&heap_cond, &cattr);

    int status = 1;
    struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
    if (se == NULL)
        goto out_args;
    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, mountpoint) != 0)
        goto out_signals;
    pthread_t reply_thread, life_thread;
    if (start_thread(&reply_thread, replier) != 0) {
        fprintf(stderr, "latencyfs: cannot start the replier\n");
        goto out_unmount;
    }
    if (opt.lifeline && start_thread(&life_thread, lifeline) == 0)
        pthread_detach(life_thread);
    printf("ready %ld\n", (long)getpid()); /* the mounting process waits for this line */
    fflush(stdout);

    /* The loops return < 0 on an error, else 0 or the number of the signal that ended
     * them (an ending asked for: status 0). */
    if (opt.threads == 1) {
        status = fuse_session_loop(se) < 0;
    } else {
        struct fuse_loop_config *config = fuse_loop_cfg_create();
        fuse_loop_cfg_set_max_threads(config, opt.threads);
        fuse_loop_cfg_set_idle_threads(config, opt.threads);
        status = fuse_session_loop_mt(se, config) < 0;
        fuse_loop_cfg_destroy(config);
    }
    pthread_mutex_lock(&heap_lock);
    replier_stop = 1;
    pthread_cond_signal(&heap_cond);
    pthread_mutex_unlock(&heap_lock);
    pthread_join(reply_thread, NULL);
out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out_args:
    fuse_opt_free_args(&args);
    return status;
}
