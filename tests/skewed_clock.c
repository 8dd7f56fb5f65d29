/* An LD_PRELOAD library for tests/test_schedule_clock.py: a machine whose wall clock is off.
 * The real-time clock (clock_gettime's CLOCK_REALTIME, gettimeofday, time) reads SKEW_SECONDS
 * (a whole number of seconds, negative for a clock behind) more than the machine's. The
 * monotonic clocks are left alone, as they are when NTP is what is missing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long skew(void) {
    const char *value = getenv("SKEW_SECONDS");
    return value == NULL ? 0 : atol(value);
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    static int (*real)(clockid_t, struct timespec *);
    if (real == NULL) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int done = real(clock, now);
    if (done == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) now->tv_sec += skew();
    return done;
}

int gettimeofday(struct timeval *restrict now, void *restrict zone) {
    static int (*real)(struct timeval *restrict, void *restrict);
    if (real == NULL) real = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT, "gettimeofday");
    int done = real(now, zone);
    if (done == 0 && now != NULL) now->tv_sec += skew();
    return done;
}

time_t time(time_t *now) {
    struct timespec spec;
    clock_gettime(CLOCK_REALTIME, &spec);
    if (now != NULL) *now = spec.tv_sec;
    return spec.tv_sec;
}
