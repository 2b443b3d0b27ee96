/* What an exec'd program has after scponly-pyc: run inside the jail, it prints key=value lines.
 * Built static by tests/root/test_chroot_shell.py; no libc, ld.so or /proc needed in the jail
 * except where the test mounts one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    char buffer[8192];
    struct stat info;
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd >= 0) {
        ssize_t got = read(fd, buffer, sizeof(buffer) - 1);
        close(fd);
        if (got > 0) {
            buffer[got] = 0;
            for (char *line = strtok(buffer, "\n"); line; line = strtok(NULL, "\n")) {
                static const char *wanted[] = {"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:",
                                               "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", 0};
                for (int i = 0; wanted[i]; i++)
                    if (strncmp(line, wanted[i], strlen(wanted[i])) == 0) printf("status.%s\n", line);
            }
        }
    }
    printf("nnp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    int result = setuid(0);
    printf("setuid0=%d errno=%d\n", result, result ? errno : 0);
    result = setgid(0);
    printf("setgid0=%d errno=%d\n", result, result ? errno : 0);
    printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());
    printf("cwd=%s\n", getcwd(buffer, sizeof(buffer)) ? buffer : "?");
    printf("jail_marker=%d\n", stat("/JAIL_MARKER", &info) == 0);
    for (int i = 0; i < argc; i++) printf("argv=%s\n", argv[i]);
    for (char **variable = environ; *variable; variable++) printf("env=%s\n", *variable);
    for (int i = 0; i < 64; i++)
        if (fstat(i, &info) == 0)
            printf("fd=%d mode=%o size=%lld\n", i, info.st_mode, (long long)info.st_size);
    return 0;
}
