/*
 * scponly-py's login shell front: what sshd execs for a plain (unjailed) account.
 *
 * Contract (the why: docs/design.md, "The login environment"):
 * installed root-owned with the file capability cap_wake_alarm+p, so the kernel
 * starts it in secure-execution mode (AT_SECURE) and the dynamic loader and glibc
 * ignore or drop what PAM (~/.pam_environment), sshd (AcceptEnv,
 * PermitUserEnvironment) or the client put in the environment (LD_PRELOAD,
 * LD_AUDIT, GCONV_PATH, ...). Then, in order:
 *   1. block the signals a client can have sshd send, until the shell restores
 *      them right before it execs the transfer program (no traceback, ever);
 *   2. empty every capability set and read them back;
 *   3. set no_new_privs and install the set-id filter SETID_FILTER (compiled in:
 *      scponly_py/setid.py's program for this machine; none on a machine it has
 *      no program for);
 *   4. exec the isolated Python launcher LAUNCHER (compiled in) with the same
 *      arguments and only the variables the shell reads (PASSED_NAMES,
 *      generated from scponly_py/request.py READ_VARIABLES, which includes
 *      its allowlist PASSED_VARIABLES), plus SCPONLY_PY_FRONT: "1" when steps 1-2 held
 *      (or the real uid is root), "1+set-id-filter" when step 3 held too (the
 *      shell then installs no filter of its own), else why not, which the shell
 *      refuses and logs.
 * It writes nothing and reads no file; its only failure of its own is an exec
 * that fails: one line on stderr, exit status 1.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef LAUNCHER
#error "build with -DLAUNCHER='\"/path/to/launcher\"' (scponly-py-setup install-shell does)"
#endif
#ifndef PASSED_NAMES
#error "build with -DPASSED_NAMES='\"LANG\",...' (scponly-py-setup install-shell does)"
#endif

#define MAX_PASSED 64

extern char **environ;

static const char *const passed_names[] = {PASSED_NAMES};
static const int held_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE};
#ifdef SETID_FILTER
static struct sock_filter setid_filter[] = {SETID_FILTER};
#endif

/* no_new_privs, then the set-id filter; whether both held (never, without a filter). */
static int install_setid_filter(void)
{
#ifdef SETID_FILTER
    struct sock_fprog program = {sizeof(setid_filter) / sizeof(setid_filter[0]), setid_filter};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return 0;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
#else
    return 0;
#endif
}

static int passed(const char *entry)
{
    const char *equals = strchr(entry, '=');
    size_t length;

    if (equals == NULL)
        return 0;
    length = (size_t)(equals - entry);
    for (size_t i = 0; i < sizeof(passed_names) / sizeof(passed_names[0]); i++)
        if (strlen(passed_names[i]) == length && strncmp(entry, passed_names[i], length) == 0)
            return 1;
    return 0;
}

/* Empty the effective, permitted and inheritable sets (ambient follows) and check. */
static int drop_capabilities(void)
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &header, data) != 0)
        return 0;
    if (syscall(SYS_capget, &header, data) != 0)
        return 0;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].effective || data[i].permitted || data[i].inheritable)
            return 0;
    return 1; /* the ambient set is a subset of permitted and inheritable: empty too */
}

int main(int argc, char **argv)
{
    static char *environment[MAX_PASSED + 2];
    static char *arguments[4096];
    char *status = "SCPONLY_PY_FRONT=1";
    sigset_t held;
    int count = 0;

    sigemptyset(&held);
    for (size_t i = 0; i < sizeof(held_signals) / sizeof(held_signals[0]); i++)
        sigaddset(&held, held_signals[i]);
    if (sigprocmask(SIG_BLOCK, &held, NULL) != 0)
        status = "SCPONLY_PY_FRONT=signal-mask";
    if (getauxval(AT_SECURE) == 0 && getuid() != 0)
        status = "SCPONLY_PY_FRONT=not-secure-execution";
    if (!drop_capabilities())
        status = "SCPONLY_PY_FRONT=capabilities-remain";
    else if (strcmp(status, "SCPONLY_PY_FRONT=1") == 0 && install_setid_filter())
        status = "SCPONLY_PY_FRONT=1+set-id-filter";

    for (char **entry = environ; *entry != NULL && count < MAX_PASSED; entry++)
        if (passed(*entry))
            environment[count++] = *entry;
    environment[count++] = status;
    environment[count] = NULL;

    if (argc < 1 || (size_t)argc >= sizeof(arguments) / sizeof(arguments[0])) {
        static const char message[] = "scponly-py: refused: unsupported invocation\n";
        (void)!write(2, message, sizeof(message) - 1);
        return 1;
    }
    arguments[0] = (char *)LAUNCHER;
    for (int i = 1; i < argc; i++)
        arguments[i] = argv[i];
    arguments[argc] = NULL;
    execve(LAUNCHER, arguments, environment);
    {
        static const char message[] = "scponly-py: refused: cannot run the launcher " LAUNCHER "\n";
        (void)!write(2, message, sizeof(message) - 1);
    }
    return 1;
}
