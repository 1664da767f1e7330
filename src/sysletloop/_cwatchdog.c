/*
 * sysletloop._cwatchdog: the C watchdog. Notices that the inline call has run past the
 * threshold, without taking the GIL to look.
 *
 * Same contract as the pure-Python watchdog (see _watchdog.py and _pywatchdog.py): the
 * loop's owner *arms* the watchdog with a token (the call) before running a blocking
 * callable inline and *disarms* it after; if the same arming is still current
 * `threshold` seconds after `arm`, the watchdog calls `on_overdue(token)` from its own
 * thread, with the GIL held, once per arming. What happens then is the loop's business
 * (it re-checks under its own lock, so a report about a call that just returned is
 * harmless).
 *
 * Why C: a Python watchdog needs the GIL merely to *look* at the clock, so while the
 * inline call holds the GIL (pure-Python work) it cannot see anything until the next GIL
 * switch (5 ms by default). This thread looks at two atomics and the clock with no GIL,
 * and takes the GIL only to report. Arming is a few stores on the owner's side; no lock,
 * no system call, unless the watchdog must be woken.
 *
 * Glossary
 *   arming    one arm() call. Numbered by `seq`: an odd value is "arming number seq is
 *             current", an even value is "nothing armed". arm() moves seq to the next
 *             odd number (from odd, past it: re-arming without a disarm, as a new owner
 *             does after a hand-over, is a new arming); disarm() moves odd to even.
 *   armed_at  CLOCK_MONOTONIC nanoseconds at arm() (time.monotonic()'s clock).
 *   deadline  armed_at + threshold: from then on the arming is overdue.
 *   spin      the last spin_ns (SPIN_NS, at most 1/20 of the threshold) before a
 *             current arming's deadline: the watchdog wakes that early and watches the
 *             clock and seq, because a timer wake-up on a VM lands tens of us late.
 *   look      the watchdog thread reads seq, armed_at and the clock, and decides:
 *             report, sleep until a deadline, poll, back off, or park.
 *   poll      sleep one threshold, then look again (calls are coming).
 *   back off  nothing happened since the last look: double the sleep, up to
 *             MAX_SLEEP_NS (or one threshold, if that is longer).
 *   park      PARK_AFTER_NS of quiet: wait with no timeout until kicked.
 *   wake_at   when the watchdog will look next: a deadline (less the spin) or a poll,
 *             INT64_MAX when parked, 0 while awake (about to look anyway).
 *   kick      signal the condition variable (under the mutex), so a parked or
 *             over-sleeping watchdog looks now. Done by arm() only when needed.
 *   core      the state shared with the thread (struct wd_core), malloc'd apart from
 *             the Python object, so the thread can outlive the object (see "Closing").
 *
 * Which thread touches what
 *   owner     (the loop's current owner; one thread at a time, GIL held): arm() and
 *             disarm() write seq and armed_at (atomics, no lock) and `token` (a plain
 *             field, guarded by the GIL); arm() reads wake_at and may kick (mutex).
 *             Successive owners are ordered by the loop's ownership lock, so a new
 *             owner's relaxed read of seq sees its predecessor's writes.
 *   watchdog  (the native thread): reads seq and armed_at with no GIL; writes wake_at;
 *             holds the mutex while it looks and decides, and never while it waits for
 *             the GIL (the owner may hold the GIL and want the mutex in arm()). To
 *             report, it takes the GIL, re-checks seq (now exact: arm/disarm run under
 *             the GIL), then reads `token` and `on_overdue`.
 *   anyone    close(), is_alive(), native_id (GIL held); close() takes the mutex.
 *   ASSUMED   the GIL orders `token`/`on_overdue`/`owner` between the owner and the
 *             reporting watchdog. A free-threaded build would need a lock (or an atomic
 *             exchange) for them; this module does not declare Py_mod_gil, so 3.13t
 *             re-enables the GIL when it is imported.
 *
 * Memory orders: pairing an arming with its time
 *   arm() stores armed_at (relaxed) then seq (seq_cst, which includes release). The
 *   watchdog loads seq (acquire, here seq_cst) then armed_at (relaxed). If it loads the
 *   value n of seq, the acquire synchronises with arm() number n's release, so its later
 *   load of armed_at returns arm n's time *or a later one* (never an earlier arming's).
 *   A later time belongs to an arming after n, so n is no longer current; the deadline
 *   computed from it is only later than n's: the watchdog can be late about an arming
 *   that is over (and owes no report), never early about one that is current. Before
 *   it reports, it takes the GIL and re-reads seq: equal to n means arming n is still
 *   current, and since the time it used was >= n's armed_at and the clock passed that
 *   time + threshold, n really is overdue. No retry loop is needed. armed_at is the
 *   data and seq the flag that publishes it, so the time needs no ordering of its own:
 *   relaxed on both sides (an acquire load of it would order nothing further).
 *   Other atomics: `closing` and `alive` are flags, written under the mutex where a
 *   waiter depends on them; `refs` is acq_rel (the last to let go frees the core).
 *   Rejected: a seqlock (writer marks odd, writes, marks even; reader retries): more
 *   stores on the hot path to buy exactness we already get from the GIL re-check. One
 *   128-bit atomic {seq, time}: needs cmpxchg16b/libatomic, not lock-free everywhere. A
 *   mutex in arm(): ~20-40 ns uncontended but contended with the watchdog's looks. A
 *   heap record per arming published by pointer: an allocation and a reclamation
 *   problem per call.
 *
 * No lost kick (Dekker order; both sides publish, then check)
 *   1. arm() stores seq (seq_cst), then loads wake_at (seq_cst); if the watchdog would
 *      sleep past the new deadline (or is parked), it kicks, under the mutex.
 *   2. The watchdog, holding the mutex, stores wake_at (seq_cst), then re-loads seq
 *      (seq_cst); if seq moved it looks again instead of waiting. It keeps the mutex
 *      from that re-check until pthread_cond_*wait releases it atomically, so a kick
 *      cannot fall between its check and its wait.
 *   With seq_cst on all four accesses (the store-buffer litmus test), at least one side
 *   sees the other's store: either arm() sees the new wake_at and kicks if it must, or
 *   the watchdog sees the new seq and does not sleep on stale information. On x86-64
 *   this costs one locked instruction (xchg) in arm(). The store of 0 to wake_at on
 *   waking up is relaxed: it only spares arm() a needless kick, and the watchdog
 *   re-checks before any wait.
 *
 * Adaptive polling (Go's sysmon, with a kick)
 *   While calls keep coming (seq moved since the last look), look once per threshold,
 *   or a spin before the armed call's deadline if sooner: arm() then never needs to
 *   kick. With nothing new, double the sleep up to MAX_SLEEP_NS, and after
 *   PARK_AFTER_NS of quiet park. An arm() while the watchdog backs off or parks kicks
 *   it (one futex wake, once per quiet spell; ~12-18 us in arm() on a small VM, where
 *   waking a thread is dear), so detection stays on time whatever the sleep.
 *
 * The thread
 *   A native pthread, named (pthread_setname_np, 15 bytes), with timer slack 1 us
 *   (prctl(PR_SET_TIMERSLACK)), waiting on a CLOCK_MONOTONIC condition variable. All
 *   signals are blocked in it, so a process-directed signal (Ctrl-C) goes to a Python
 *   thread and interrupts the blocking system call there, never to this one. It has
 *   its own PyThreadState (made once, with PyThreadState_New, which binds it to the
 *   thread for PyGILState_*), so a report costs a GIL hand-over and no allocation;
 *   PyGILState_Ensure/Release find it and leave it in place.
 *
 * Closing
 *   close() (any thread, idempotent) sets `closing` under the mutex and signals; then,
 *   with the GIL released (the thread may be waiting for the GIL to report: joining
 *   with it held would deadlock), waits until the thread says it is done, then joins
 *   it. If close() runs on the watchdog thread itself (on_overdue dropped the last
 *   reference, or closed it), it cannot join: it detaches, and the thread exits once
 *   the report returns. That is why the shared state lives in `core`, freed by whichever
 *   of the object and the thread lets go of it last. Deallocation clears core->owner
 *   (under the GIL) before it releases the GIL, so the thread never resurrects a dying
 *   object. During interpreter finalisation nothing waits: the thread skips reports
 *   (Py_IsFinalizing) and, told so by close(), exits without touching Python (its
 *   thread state is leaked with the dying interpreter). If CPython ends the thread
 *   inside PyGILState_Ensure anyway (3.11-3.13 call pthread_exit there once finalising),
 *   a cleanup handler still marks it done.
 *
 * Fork
 *   In a child the thread does not exist and the mutex may be held by its ghost. A
 *   pthread_atfork child handler bumps fork_generation; an object from an older
 *   generation never locks, waits, joins or kicks: close() just marks it closed,
 *   is_alive() is False, arm() records but nothing watches. (The loop drops its
 *   watchdog in the child.)
 *
 * Rejected: a timer per call (one futex wake per call, ~15-20 us of CPU each on a small
 * VM); a fixed-rate poll (CPU when idle); signals to interrupt the blocked call (it must
 * finish where it is); threading.Thread for the C thread (needs the GIL to start and to
 * look); PyGILState_Ensure with a fresh thread state per report (an allocation and a
 * teardown on the hand-over's critical path).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef __linux__
#error "sysletloop._cwatchdog is Linux-only (prctl, gettid); the Python watchdog serves elsewhere"
#endif

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030D0000
#define WD_IS_FINALIZING() Py_IsFinalizing()
#else
#define WD_IS_FINALIZING() _Py_IsFinalizing()
#endif

/* Go's sysmon backs off to 10 ms; at ~15-20 us of CPU per wake-up, polling every 10 ms
 * would still cost ~0.2% of a core, so after this much quiet it parks instead. */
#define MAX_SLEEP_NS (10 * 1000 * 1000LL)
#define PARK_AFTER_NS (10 * 1000 * 1000LL)
/* A timer wake-up lands late: 35-55 us on a small VM even with 1 us of timer slack
 * (design/FINDINGS.md). So the watchdog sets its timer this much before a current
 * arming's deadline and spins the rest, watching seq. It spins only when an arming is
 * still current that close to its deadline (a call that has run 95% of the threshold
 * is almost always a call about to be declared blocked), so it costs at most ~SPIN_NS of
 * CPU per hand-over, and nothing while calls are short or nothing is armed. Never more
 * than 1/20 of the threshold, so that with a small threshold and long calls the spin
 * stays a small share of a core. */
#define SPIN_NS (50 * 1000LL)
#define SPIN_SHARE 20
/* 1 us (as _timerslack.TIMER_SLACK_NS): a 1 ms deadline should end when asked. */
#define TIMER_SLACK_NS 1000UL
#define NEVER INT64_MAX

/* closing: bit 0 = stop; bit 1 = the interpreter is finalising, leave Python alone. */
#define CLOSE_STOP 1
#define CLOSE_NO_PYTHON 2

struct WatchdogObject;

typedef struct wd_core {
    /* Published by the owner, read by the watchdog with no lock (see the header). */
    _Atomic uint64_t seq;
    _Atomic int64_t armed_at;
    /* Published by the watchdog (under mu), read by arm() with no lock. */
    _Atomic int64_t wake_at;
    _Atomic int closing;
    _Atomic int alive;        /* the thread runs its loop (set before `started`) */
    _Atomic int refs;         /* the object and the thread: the last one frees */
    int64_t threshold_ns;     /* immutable after creation */
    int64_t spin_ns;          /* immutable: min(SPIN_NS, threshold / SPIN_SHARE) */
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* kicks and close, to the watchdog (CLOCK_MONOTONIC) */
    pthread_cond_t done;      /* started/exited, from the watchdog */
    int started;              /* under mu */
    int exited;               /* under mu */
    pid_t tid;                /* written before `started`, read after */
    PyInterpreterState *interp;
    struct WatchdogObject *owner; /* guarded by the GIL; NULL once the object dies */
    char name[16];
} wd_core;

typedef struct WatchdogObject {
    PyObject_HEAD
    wd_core *core;
    PyObject *on_overdue;     /* guarded by the GIL */
    PyObject *token;          /* guarded by the GIL; the current arming's token */
    double threshold;
    pthread_t thread;
    unsigned long fork_gen;   /* fork_generation when created */
    int thread_running;       /* pthread_create succeeded and nobody joined/detached */
    int close_requested;      /* guarded by the GIL */
} WatchdogObject;

static _Atomic unsigned long fork_generation;

static void after_fork_in_child(void) {
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static inline int64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int in_creating_process(const WatchdogObject *self) {
    return self->fork_gen == atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

static void core_release(wd_core *c) {
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        pthread_cond_destroy(&c->done);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c);
    }
}

/* ------------------------------------------------------------ the watchdog thread */

/* The thread is done with Python and with `c` (except this release): tell close(). */
static void thread_finish(wd_core *c) {
    pthread_mutex_lock(&c->mu);
    atomic_store_explicit(&c->alive, 0, memory_order_release);
    c->exited = 1;
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->mu);
    core_release(c);
}

/* pthread cleanup handler: CPython ended this thread inside PyGILState_Ensure. */
static void thread_killed(void *arg) {
    thread_finish((wd_core *)arg);
}

/* Take the GIL; if arming `s` is still current, call on_overdue(token). */
static void report(wd_core *c, uint64_t s) {
    if (WD_IS_FINALIZING() || atomic_load_explicit(&c->closing, memory_order_acquire)) {
        return;
    }
    pthread_cleanup_push(thread_killed, c);
    PyGILState_STATE gil = PyGILState_Ensure();
    WatchdogObject *self = c->owner;
    /* Under the GIL seq is exact: arm()/disarm() run with the GIL held. */
    if (self != NULL && !atomic_load_explicit(&c->closing, memory_order_relaxed)
        && atomic_load_explicit(&c->seq, memory_order_relaxed) == s
        && self->token != NULL && self->on_overdue != NULL) {
        PyObject *token = Py_NewRef(self->token);
        PyObject *callback = Py_NewRef(self->on_overdue);
        /* From here `self` may die (the callback may drop the last reference). */
        PyObject *result = PyObject_CallOneArg(callback, token);
        if (result == NULL) {
            PyErr_WriteUnraisable(callback);
        } else {
            Py_DECREF(result);
        }
        Py_DECREF(token);
        Py_DECREF(callback);
    }
    PyGILState_Release(gil);
    pthread_cleanup_pop(0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The last spin_ns before a current arming's deadline: watch the clock and seq. */
static void spin_until(wd_core *c, uint64_t s, int64_t deadline) {
    while (monotonic_ns() < deadline
           && atomic_load_explicit(&c->seq, memory_order_acquire) == s
           && !atomic_load_explicit(&c->closing, memory_order_relaxed)) {
        cpu_relax();
    }
}

static void wait_until(wd_core *c, int64_t wake) {
    if (wake == NEVER) {
        pthread_cond_wait(&c->cond, &c->mu);
        return;
    }
    struct timespec ts = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL};
    pthread_cond_timedwait(&c->cond, &c->mu, &ts); /* ETIMEDOUT or a kick: look again */
}

static void *watchdog_main(void *arg) {
    wd_core *c = (wd_core *)arg;
    prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0UL, 0UL, 0UL);
    pthread_setname_np(pthread_self(), c->name);
    c->tid = (pid_t)syscall(SYS_gettid);
    PyThreadState *tstate = PyThreadState_New(c->interp); /* no GIL needed */

    pthread_mutex_lock(&c->mu);
    atomic_store_explicit(&c->alive, 1, memory_order_release);
    c->started = 1;
    pthread_cond_broadcast(&c->done);

    const int64_t threshold = c->threshold_ns;
    const int64_t spin = c->spin_ns;
    const int64_t max_sleep = threshold > MAX_SLEEP_NS ? threshold : MAX_SLEEP_NS;
    uint64_t seen = 0;          /* seq at the last look that saw activity */
    uint64_t reported = 0;      /* the last arming reported (0: none; armings are odd) */
    int64_t sleep_ns = threshold;
    int64_t quiet_since = monotonic_ns();

    /* mu is held at the top of every iteration. */
    while (!(atomic_load_explicit(&c->closing, memory_order_relaxed) & CLOSE_STOP)) {
        uint64_t s = atomic_load_explicit(&c->seq, memory_order_seq_cst);
        int64_t now = monotonic_ns();
        int64_t wake;
        if ((s & 1) && s != reported) {
            int64_t deadline = atomic_load_explicit(&c->armed_at, memory_order_relaxed)
                               + threshold;
            seen = s;
            sleep_ns = threshold;
            quiet_since = now;
            if (now >= deadline) {
                reported = s;
                atomic_store_explicit(&c->wake_at, 0, memory_order_relaxed);
                pthread_mutex_unlock(&c->mu); /* never wait for the GIL holding mu */
                report(c, s);
                pthread_mutex_lock(&c->mu);
                continue;
            }
            if (deadline - now <= spin) {
                atomic_store_explicit(&c->wake_at, 0, memory_order_relaxed);
                pthread_mutex_unlock(&c->mu);
                spin_until(c, s, deadline);
                pthread_mutex_lock(&c->mu);
                continue;
            }
            wake = deadline - spin;
        } else if (s != seen) {
            /* Calls came (and went) since the last look: keep polling. */
            seen = s;
            sleep_ns = threshold;
            quiet_since = now;
            wake = now + sleep_ns;
        } else if (now - quiet_since >= PARK_AFTER_NS) {
            wake = NEVER;
        } else {
            sleep_ns = sleep_ns * 2 > max_sleep ? max_sleep : sleep_ns * 2;
            wake = now + sleep_ns;
        }
        atomic_store_explicit(&c->wake_at, wake, memory_order_seq_cst);
        if (atomic_load_explicit(&c->seq, memory_order_seq_cst) != s) {
            continue; /* an arm() slipped in (Dekker order): look again */
        }
        wait_until(c, wake);
        atomic_store_explicit(&c->wake_at, 0, memory_order_relaxed);
    }
    int leave_python_alone = atomic_load_explicit(&c->closing, memory_order_relaxed)
                             & CLOSE_NO_PYTHON;
    pthread_mutex_unlock(&c->mu);

    if (tstate != NULL && !leave_python_alone && !WD_IS_FINALIZING()) {
        pthread_cleanup_push(thread_killed, c);
        PyEval_RestoreThread(tstate);
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent(); /* releases the GIL */
        pthread_cleanup_pop(0);
    }
    thread_finish(c);
    return NULL;
}

/* ------------------------------------------------------------ the owner's side */

static void kick(wd_core *c) {
    pthread_mutex_lock(&c->mu);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static PyObject *Watchdog_arm(WatchdogObject *self, PyObject *token) {
    wd_core *c = self->core;
    int64_t now = monotonic_ns();
    /* The token first, the old one released last: no Python code (which could let the
     * watchdog take the GIL) runs between the token's and seq's updates. */
    PyObject *old = self->token;
    self->token = Py_NewRef(token);
    uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
    atomic_store_explicit(&c->armed_at, now, memory_order_relaxed);
    atomic_store_explicit(&c->seq, (s + 1) | 1, memory_order_seq_cst); /* next odd */
    if (atomic_load_explicit(&c->wake_at, memory_order_seq_cst) > now + c->threshold_ns
        && !self->close_requested && in_creating_process(self)) {
        kick(c);
    }
    Py_XDECREF(old);
    return PyFloat_FromDouble((double)now / 1e9); /* as time.monotonic() rounds */
}

static PyObject *Watchdog_disarm(WatchdogObject *self, PyObject *Py_UNUSED(ignored)) {
    wd_core *c = self->core;
    uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
    if (s & 1) {
        atomic_store_explicit(&c->seq, s + 1, memory_order_release);
    }
    Py_CLEAR(self->token); /* after seq: a finaliser run here sees nothing armed */
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ any thread */

/* Stop the thread and wait for it, unless this is the thread itself. GIL held. */
static void stop_thread(WatchdogObject *self) {
    self->close_requested = 1;
    if (!self->thread_running) {
        return;
    }
    wd_core *c = self->core;
    if (!in_creating_process(self)) {
        self->thread_running = 0; /* no thread here; its ghost may hold mu */
        return;
    }
    int finalizing = WD_IS_FINALIZING();
    pthread_mutex_lock(&c->mu);
    atomic_fetch_or_explicit(&c->closing, CLOSE_STOP | (finalizing ? CLOSE_NO_PYTHON : 0),
                             memory_order_release);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    if (pthread_equal(pthread_self(), self->thread) || finalizing) {
        /* From on_overdue, it exits after the report; while the interpreter dies,
         * nothing waits (the process is ending). Either way nobody joins it. */
        pthread_detach(self->thread);
        self->thread_running = 0;
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&c->mu);
    while (!c->exited) {
        pthread_cond_wait(&c->done, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    Py_END_ALLOW_THREADS
    /* Another close() may have joined while this one waited without the GIL. */
    if (self->thread_running) {
        self->thread_running = 0;
        pthread_join(self->thread, NULL); /* past all Python: quick, GIL or not */
    }
}

static PyObject *Watchdog_close(WatchdogObject *self, PyObject *Py_UNUSED(ignored)) {
    stop_thread(self);
    Py_CLEAR(self->token); /* nothing will report it now (a report holds its own ref) */
    Py_RETURN_NONE;
}

static PyObject *Watchdog_is_alive(WatchdogObject *self, PyObject *Py_UNUSED(ignored)) {
    int alive = self->core != NULL && in_creating_process(self)
                && atomic_load_explicit(&self->core->alive, memory_order_acquire);
    return PyBool_FromLong(alive);
}

static PyObject *Watchdog_get_native_id(WatchdogObject *self, void *Py_UNUSED(closure)) {
    if (self->core == NULL || self->core->tid == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong((long)self->core->tid);
}

static PyObject *Watchdog_get_threshold(WatchdogObject *self, void *Py_UNUSED(closure)) {
    return PyFloat_FromDouble(self->threshold);
}

static PyObject *Watchdog_repr(WatchdogObject *self) {
    const char *state = "closed";
    if (self->core != NULL && in_creating_process(self)
        && atomic_load_explicit(&self->core->alive, memory_order_acquire)) {
        state = self->close_requested ? "closing" : "alive";
    }
    PyObject *threshold = PyFloat_FromDouble(self->threshold);
    if (threshold == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("<%s name=%s threshold=%R %s>",
                                          Py_TYPE(self)->tp_name,
                                          self->core ? self->core->name : "?", threshold,
                                          state);
    Py_DECREF(threshold);
    return repr;
}

/* ------------------------------------------------------------ life cycle */

/* The thread name: at most 15 bytes of UTF-8, cut at a character boundary. */
static int copy_thread_name(char out[16], PyObject *name) {
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(name, &size);
    if (utf8 == NULL) {
        return -1;
    }
    Py_ssize_t n = size < 15 ? size : 15;
    while (n > 0 && n < size && ((unsigned char)utf8[n] & 0xC0) == 0x80) {
        n--; /* utf8[n] continues a character: cut before that character */
    }
    memcpy(out, utf8, (size_t)n);
    out[n] = '\0';
    return 0;
}

static wd_core *core_new(int64_t threshold_ns) {
    wd_core *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    pthread_condattr_t attr;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (pthread_condattr_init(&attr) != 0
        || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0
        || pthread_cond_init(&c->cond, &attr) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_cond_init(&c->done, NULL) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    atomic_init(&c->seq, 0);
    atomic_init(&c->armed_at, 0);
    atomic_init(&c->wake_at, 0);
    atomic_init(&c->closing, 0);
    atomic_init(&c->alive, 0);
    atomic_init(&c->refs, 1);
    c->threshold_ns = threshold_ns;
    c->spin_ns = threshold_ns / SPIN_SHARE < SPIN_NS ? threshold_ns / SPIN_SHARE : SPIN_NS;
    return c;
}

static PyObject *Watchdog_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"threshold", "on_overdue", "name", NULL};
    double threshold;
    PyObject *on_overdue;
    PyObject *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "dO|$U:Watchdog", keywords, &threshold,
                                     &on_overdue, &name)) {
        return NULL;
    }
    if (name == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "Watchdog() missing required keyword-only argument: 'name'");
        return NULL;
    }
    if (!(threshold > 0.0) || !isfinite(threshold) || threshold > 1e9) {
        PyObject *got = PyFloat_FromDouble(threshold);
        if (got != NULL) {
            PyErr_Format(PyExc_ValueError,
                         "threshold must be a positive number of seconds, got %R", got);
            Py_DECREF(got);
        }
        return NULL;
    }
    if (!PyCallable_Check(on_overdue)) {
        PyErr_Format(PyExc_TypeError, "on_overdue must be callable, got %.100s",
                     Py_TYPE(on_overdue)->tp_name);
        return NULL;
    }
    int64_t threshold_ns = (int64_t)llround(threshold * 1e9);
    if (threshold_ns < 1) {
        threshold_ns = 1;
    }

    WatchdogObject *self = (WatchdogObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->threshold = threshold;
    self->on_overdue = Py_NewRef(on_overdue);
    self->fork_gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    wd_core *c = self->core = core_new(threshold_ns);
    if (c == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (copy_thread_name(c->name, name) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    c->interp = PyInterpreterState_Get();
    c->owner = self;

    /* The thread inherits a mask with every signal blocked (see the header). */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed); /* the thread's */
    int err = pthread_create(&self->thread, NULL, watchdog_main, c);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (err != 0) {
        atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed);
        Py_DECREF(self);
        errno = err;
        return PyErr_SetFromErrno(PyExc_RuntimeError);
    }
    self->thread_running = 1;

    /* Wait until it runs, so that is_alive() and native_id hold from the start. */
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&c->mu);
    while (!c->started) {
        pthread_cond_wait(&c->done, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    Py_END_ALLOW_THREADS
    return (PyObject *)self;
}

static int Watchdog_traverse(WatchdogObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->on_overdue);
    Py_VISIT(self->token);
    return 0;
}

static int Watchdog_clear(WatchdogObject *self) {
    Py_CLEAR(self->on_overdue); /* report() checks for NULL, under the GIL */
    Py_CLEAR(self->token);
    return 0;
}

static void Watchdog_dealloc(WatchdogObject *self) {
    PyObject_GC_UnTrack(self);
    wd_core *c = self->core;
    if (c != NULL) {
        c->owner = NULL; /* before stop_thread lets the GIL go: no resurrection */
        stop_thread(self);
        self->core = NULL;
        if (in_creating_process(self)) {
            core_release(c);
        } else {
            free(c); /* the child's copy; its mutex may be held by a ghost */
        }
    }
    Watchdog_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ------------------------------------------------------------ the type */

static PyMethodDef Watchdog_methods[] = {
    {"arm", (PyCFunction)Watchdog_arm, METH_O,
     "arm($self, token, /)\n--\n\n"
     "Owner only: start watching token; returns the arming time (time.monotonic())."},
    {"disarm", (PyCFunction)Watchdog_disarm, METH_NOARGS,
     "disarm($self, /)\n--\n\nOwner only: the call returned; nothing is armed."},
    {"close", (PyCFunction)Watchdog_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Any thread: stop the watchdog thread and wait for it (unless called from it)."},
    {"is_alive", (PyCFunction)Watchdog_is_alive, METH_NOARGS,
     "is_alive($self, /)\n--\n\nWhether the watchdog thread is running."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Watchdog_getset[] = {
    {"native_id", (getter)Watchdog_get_native_id, NULL,
     "The watchdog thread's kernel thread id (gettid).", NULL},
    {"threshold", (getter)Watchdog_get_threshold, NULL,
     "Seconds an arming may last before it is reported.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject WatchdogType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sysletloop._cwatchdog.Watchdog",
    .tp_doc = PyDoc_STR(
        "Watchdog(threshold, on_overdue, *, name)\n--\n\n"
        "Reports a token armed for longer than threshold seconds, once per arming,\n"
        "from a native thread that looks without the GIL."),
    .tp_basicsize = sizeof(WatchdogObject),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Watchdog_new,
    .tp_dealloc = (destructor)Watchdog_dealloc,
    .tp_traverse = (traverseproc)Watchdog_traverse,
    .tp_clear = (inquiry)Watchdog_clear,
    .tp_repr = (reprfunc)Watchdog_repr,
    .tp_methods = Watchdog_methods,
    .tp_getset = Watchdog_getset,
};

/*
 * wait_still(clockid, period, share, max_wait) -> float: the step sampler's wait
 * (_stepsampler.py). With the GIL released, read a thread's CPU clock (clockid, from
 * time.pthread_getcpuclockid) every `period` seconds, and return as soon as one interval
 * shows it used less than `share` of the interval's wall time: the interval's length in
 * seconds. 0.0: no such interval within `max_wait` (the thread computes). -1.0: the clock
 * cannot be read (the thread is gone). Why C: a Python sampler needs the GIL merely to
 * read the clock, and takes it from a loop that computes at every poll; this one takes
 * no GIL until the thread is still, when the thread does not hold the GIL anyway.
 */
static double ts_seconds(const struct timespec *ts) {
    return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

static PyObject *cwatchdog_wait_still(PyObject *Py_UNUSED(module), PyObject *args) {
    int clock_int;
    double period, share, max_wait;
    if (!PyArg_ParseTuple(args, "iddd:wait_still", &clock_int, &period, &share, &max_wait)) {
        return NULL;
    }
    if (!(period > 0.0) || !(max_wait >= 0.0) || period > 60.0 || max_wait > 3600.0) {
        PyErr_SetString(PyExc_ValueError, "wait_still: period must be in (0, 60] and max_wait in [0, 3600]");
        return NULL;
    }
    clockid_t clock = (clockid_t)clock_int;
    double result = 0.0;
    Py_BEGIN_ALLOW_THREADS
    struct timespec ts;
    struct timespec nap; /* never longer than max_wait: the caller must get an answer then */
    double nap_s = period < max_wait || max_wait <= 0.0 ? period : max_wait;
    nap.tv_sec = (time_t)nap_s;
    nap.tv_nsec = (long)((nap_s - (double)nap.tv_sec) * 1e9);
    if (clock_gettime(clock, &ts) != 0) {
        result = -1.0;
    } else {
        double cpu0 = ts_seconds(&ts);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double start = ts_seconds(&ts);
        double t0 = start;
        for (;;) {
            clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL); /* EINTR: look early */
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double now = ts_seconds(&ts);
            if (clock_gettime(clock, &ts) != 0) {
                result = -1.0;
                break;
            }
            double cpu = ts_seconds(&ts);
            if (now > t0 && cpu - cpu0 < share * (now - t0)) {
                result = now - t0;
                break;
            }
            if (now - start >= max_wait) {
                result = 0.0;
                break;
            }
            t0 = now;
            cpu0 = cpu;
        }
    }
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(result);
}

static PyMethodDef cwatchdog_functions[] = {
    {"wait_still", (PyCFunction)cwatchdog_wait_still, METH_VARARGS,
     "wait_still(clockid, period, share, max_wait) -> float: wait, without the GIL, for an "
     "interval in which a thread's CPU clock advanced by less than share of it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cwatchdog_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sysletloop._cwatchdog",
    .m_doc = "The C watchdog: detects a blocked inline call without the GIL.",
    .m_size = -1,
    .m_methods = cwatchdog_functions,
};

PyMODINIT_FUNC PyInit__cwatchdog(void) {
    static int atfork_registered = 0;
    if (!atfork_registered) {
        int err = pthread_atfork(NULL, NULL, after_fork_in_child);
        if (err != 0) {
            errno = err;
            return PyErr_SetFromErrno(PyExc_ImportError);
        }
        atfork_registered = 1;
    }
    if (PyType_Ready(&WatchdogType) < 0) {
        return NULL;
    }
    PyObject *kind = PyUnicode_InternFromString("c");
    if (kind == NULL) {
        return NULL;
    }
    int err = PyDict_SetItemString(WatchdogType.tp_dict, "kind", kind);
    Py_DECREF(kind);
    if (err < 0) {
        return NULL;
    }
    PyType_Modified(&WatchdogType);
    PyObject *module = PyModule_Create(&cwatchdog_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Watchdog", (PyObject *)&WatchdogType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
