"""Subversion's svnserve in tunnel mode, as `svn+ssh://` starts it: exactly `svnserve -t`.

Anything a client adds is refused (recorded from Subversion 1.14.2: the client sends
exactly `svnserve -t`). The exec'd argv comes from the policy:

    svnserve -t --root SVN_ROOT [--read-only] [--tunnel-user=USER]

An empty or relative `svn_root` refuses; write-only accounts are refused (svn cannot commit
without reading), and so is a read-write account with any other program. `root_problems`
refuses the login while the tree under `svn_root` (hooks/, conf/) could be changed by
anyone but root: hooks run as the account. The why (CVE-2007-6350, the deepest-repository
rule): docs/design.md, "What a session can observe"; scponly-py.toml(5), svn_root.
"""

import posix

from scponly_py import trusted
from scponly_py.outcome import Refusal

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
