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

- `--root` is `svn_root` (absolute, or relative to HOME). svnserve refuses
  repository paths outside it. An empty `svn_root` refuses svnserve.
- `--read-only` for read-only accounts. A write-only account is refused:
  svn cannot commit without reading.
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
So repositories under `svn_root` must be owned by another user (root) at the
top, with `hooks/` and `conf/` not writable by the account; only `db/` and
`locks/` need to be writable (e.g. through a group) for commits. scponly's
CVE-2007-6350 (Joachim Breitner) was exactly this: a user created a
repository with a hook in their own home and committed to it. The related
`svn --config-option=config:helpers:editor-cmd=X` vector needs the svn
*client*, which is never allowed here.
"""

from scponly_py.decision import Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "svnserve"
SERVER_FORM = ("-t",)


def root_directory(policy: "Policy", request: "Request") -> str:
    """The directory svnserve serves: `svn_root` as is if absolute, else below HOME."""
    if policy.svn_root.startswith("/"):
        return policy.svn_root
    return f"{request.home.rstrip('/')}/{policy.svn_root}"


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate `svnserve -t`; return the argv (after argv[0]) built from the policy."""
    arguments = tuple(words[1:])
    if arguments != SERVER_FORM:
        extra = [argument for argument in arguments if argument not in ("-t", "--tunnel")]
        detail = f" (refused: {extra[0][:64]!r})" if extra else ""
        raise Refusal(f"only 'svnserve -t' is allowed{detail}")
    if not policy.svn_root:
        raise Refusal("svnserve is not configured for this account (no svn_root)")
    if policy.access == "write-only":
        raise Refusal("svnserve cannot be write-only; it is refused for this account")
    argv = ["-t", "--root", root_directory(policy, request)]
    if policy.access == "read-only":
        argv.append("--read-only")
    if policy.svn_tunnel_user:
        argv.append(f"--tunnel-user={request.user}")
    return argv
