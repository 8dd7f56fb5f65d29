/* An LD_PRELOAD library for tests/test_device_errors.py, a device that fails on demand:
 * - while the file named by the environment variable FAILSYNC_FLAG exists, fsync and
 *   fdatasync fail with EIO, as on a device that could not write back what the page cache held;
 * - while the file named by FAILREAD_FLAG exists, pread64 (how SQLite reads its files) fails
 *   with EIO, as on a device with unreadable blocks;
 * - while the file named by SLOWSYNC_FLAG exists, fsync and fdatasync take 300 ms longer, as
 *   on a slow or overloaded device.
 * Nothing else changes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static int flagged(const char *variable) {
    const char *flag = getenv(variable);
    return flag != NULL && access(flag, F_OK) == 0;
}

static int failing(void) {
    if (flagged("SLOWSYNC_FLAG")) usleep(300 * 1000);
    return flagged("FAILSYNC_FLAG");
}

int fsync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, void *, size_t, off_t);
    if (flagged("FAILREAD_FLAG")) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
    return real(fd, buf, count, offset);
}
