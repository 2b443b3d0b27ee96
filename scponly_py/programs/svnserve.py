"""Subversion's svnserve in tunnel mode, as `svn+ssh://` starts it.

Reference: Subversion 1.14.2 (Debian 12 `subversion`). Recorded with
`SVN_SSH=RECORDER svn ls svn+ssh://user@host/repo`: the client runs
`RECORDER user@host svnserve -t`, so the login shell receives exactly
`svnserve -t`. That is the whole grammar: anything a client adds is refused,
including everything that would turn svnserve into a daemon or point it at
files of the client's choosing (`-d`, `-i`, `-X`, `--listen-port`,
`--listen-host`, `--config-file`, `--log-file`, `--pid-file`, `-r/--root`,
`--tunnel-user`, `-T`, cache and size options).

The exec'd argv comes from the policy:

    svnserve -t --root ROOT [--read-only] [--tunnel-user=USER]

- `--root` is `svn_root`, an absolute path (a relative one, which the config
  refuses, is refused here too: a compiled config may predate that rule).
  svnserve refuses repository paths outside it. An empty `svn_root` refuses
  svnserve. Before the exec the login checks the tree (`root_problems`).
- `--read-only` for read-only accounts. A write-only account is refused:
  svn cannot commit without reading. A read-write account is refused if it
  has any other program: every one of them can create files, and commits
  need `db/` writable by the account, where it could then put a repository
  of its own with its own hooks; svnserve serves the *deepest* repository on
  a URL's path (svn_repos_find_root_path), so `svn+ssh://host/repo/db/x`
  runs `repo/db/x/hooks/start-commit` as the account (reproduced with
  Subversion 1.14.2).
- `--tunnel-user=USER` (the passwd login name) if `svn_tunnel_user` is set.
- `links` does not apply: svn stores symbolic links as versioned properties
  and never creates one on the server.

Repository hooks are code execution by design. svnserve runs
`REPO/hooks/pre-commit`, `post-commit`, `pre-revprop-change`, `start-commit`,
`pre-lock`, … as the account itself, with an environment taken from
`REPO/conf/hooks-env`; `REPO/conf/svnserve.conf` names the password and authz
files. Whoever can write those files runs programs the next time svnserve
reaches the hook, and the svn *protocol* cannot write them, but the file
system can: if the account may write a repository's `hooks/` or `conf/`
directory directly — through its own sftp, scp, rsync or WinSCP access, or
because `svn_root` lies in a home it can write — svn access is shell access.
So repositories under `svn_root` must be owned by root at the top, with
`hooks/` and `conf/` not writable by the account (`root_problems` checks it
before every svnserve login); only `db/` and `locks/` need to be writable
(e.g. through a group) for commits. scponly's
CVE-2007-6350 (Joachim Breitner) was exactly this: a user created a
repository with a hook in their own home and committed to it. The related
`svn --config-option=config:helpers:editor-cmd=X` vector needs the svn
*client*, which is never allowed here.
"""

import posix

from scponly_py import trusted
from scponly_py.decision import Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "svnserve"
SERVER_FORM = ("-t",)


# What makes a directory a repository for svnserve (libsvn_repos check_repos_path()).
FORMAT, DB = "format", "db"
# The parts of a repository whose contents svnserve runs or obeys.
CODE_DIRECTORIES = ("hooks", "conf")


def root_problems(root: str) -> list[tuple[str, str]]:
    """Every (path, reason) that lets someone but root change what svnserve runs below `root`.

    `root` by the trusted-path rule; below it each directory down to the repositories
    (a `format` entry and a `db` directory), each repository's top and everything in its
    hooks/ and conf/ must be root's and not writable by group or others. A symlink is
    judged by the rule up to its target in hooks/ and conf/ and refused elsewhere (svnserve
    would find repositories through it that nobody checked). db/ and locks/ are not read.
    """
    found = trusted.problems(root)
    if not found:
        _tree_problems(root, posix.stat(root), found, in_repository=False)
    return found


def _tree_problems(
    path: str, info: posix.stat_result, found: list[tuple[str, str]], *, in_repository: bool
) -> None:
    """Judge the entries of the trusted directory `path` (stat `info`), depth first."""
    try:
        entries = {entry.name: entry for entry in posix.scandir(path)}
    except OSError as error:
        found.append((path, f"cannot be read: {error.strerror}"))
        return
    repository = not in_repository and _is_repository(path, entries)
    for name in sorted(entries):
        if repository and name not in CODE_DIRECTORIES:
            continue
        where = f"{path}/{name}"
        entry_info = entries[name].stat(follow_symlinks=False)
        kind = entry_info.st_mode & trusted.S_IFMT
        if kind == trusted.S_IFLNK:
            if in_repository or repository:
                found.extend(trusted.problems(where))
            else:
                found.append((where, "is a symlink outside a repository's hooks/ and conf/"))
            continue
        if kind != trusted.S_IFDIR and not (in_repository or repository):
            continue  # a plain file beside the repositories is nothing svnserve serves
        reason = trusted.target_problem(entry_info, info)
        if reason:
            found.append((where, reason))
        elif kind == trusted.S_IFDIR:
            _tree_problems(where, entry_info, found, in_repository=in_repository or repository)


def _is_repository(path: str, entries: dict) -> bool:
    """Whether svnserve takes `path` for a repository: a `format` entry, `db` a directory."""
    if FORMAT not in entries or DB not in entries:
        return False
    try:
        return posix.stat(f"{path}/{DB}").st_mode & trusted.S_IFMT == trusted.S_IFDIR
    except OSError:
        return False


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate `svnserve -t`; return the argv (after argv[0]) built from the policy."""
    arguments = tuple(words[1:])
    if arguments != SERVER_FORM:
        extra = [argument for argument in arguments if argument not in ("-t", "--tunnel")]
        detail = f" (refused: {extra[0][:64]!r})" if extra else ""
        raise Refusal(f"only 'svnserve -t' is allowed{detail}")
    if not policy.svn_root:
        raise Refusal("svnserve is not configured for this account (no svn_root)")
    if not policy.svn_root.startswith("/"):
        raise Refusal("svn_root is not an absolute path; run 'scponly-py check-config'")
    if policy.access == "write-only":
        raise Refusal("svnserve cannot be write-only; it is refused for this account")
    writers = sorted(policy.programs - {NAME}) if policy.access == "read-write" else []
    if writers:
        raise Refusal(
            f"svnserve with commit access is refused for an account that also has "
            f"{', '.join(writers)}: it could put a repository of its own, hooks included, into "
            f"a repository's db/ (use another account, or access = read-only)"
        )
    argv = ["-t", "--root", policy.svn_root]
    if policy.access == "read-only":
        argv.append("--read-only")
    if policy.svn_tunnel_user:
        argv.append(f"--tunnel-user={request.user}")
    return argv
