"""rssh.conf(5) in the shapes its man page and default file show -> config.toml that
scponly-py's own parser accepts; bad lines are refused with their number."""

from __future__ import annotations

import pwd

import pytest

from scponly_py import policy
from setup_chroot import migrate

DEFAULT_234 = """\
# This is the default rssh config file

# set the log facility.  "LOG_USER" and "user" are equivalent.
logfacility = LOG_USER

# Leave these all commented out to make the default action for rssh to lock
# users out completely...

allowscp
allowsftp
#allowcvs
#allowrdist
allowrsync
#allowsvnserve

# set the default umask
umask = 022

# If you want to chroot users, use this to set the directory where the root of
# the chroot jail will be located.
chrootpath = /usr/local/chroot

#user=rudy:077:000010:  # the path can simply be left out to not chroot
user=rudy:077:00010:  # the path can simply be left out to not chroot
user=anna:011:00001:"/usr/local/chroot dir"  # scp with chroot
user=carl:011:00011:/usr/local/chroot  # both with chroot
user=dora:011:00100:  # cvs, with no chroot
user="erik:011:10000:/usr/local/chroot"  # whole user string can be quoted
user=fay:01"1:00001:/usr/local/chroot"  # or somewhere in the middle, freak!
user=gus:'011:000001:/srv/svn'  # six bits: svnserve last
"""


def entry(name: str, shell: str, home: str) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", 1000, 1000, "", home, shell))


def test_the_documented_shapes_convert_and_parse() -> None:
    conf = migrate.parse_rssh(DEFAULT_234)
    assert conf.programs == ["scp", "sftp", "rsync"] and conf.umask == "0022"
    assert conf.chrootpath == "/usr/local/chroot"
    users = conf.users
    assert users["rudy"] == migrate.RsshUser("rudy", "0077", ("sftp",), "", 24)
    assert users["anna"].programs == ("scp",) and users["anna"].chroot == "/usr/local/chroot dir"
    assert users["carl"].programs == ("sftp", "scp")
    assert users["dora"].programs == ("cvs",) and users["dora"].chroot == ""
    assert users["erik"].programs == ("rsync",) and users["erik"].chroot == "/usr/local/chroot"
    assert users["fay"].umask == "0011" and users["fay"].programs == ("scp",)
    assert users["gus"].programs == ("svnserve",) and users["gus"].chroot == "/srv/svn"
    assert any(note.startswith("line 4: logfacility: scponly-py logs") for note in conf.notes)
    assert any(note.startswith("cvs: no cvs here") for note in conf.notes)

    accounts = [
        entry("rudy", "/usr/bin/rssh", "/home/rudy"),
        entry("gus", "/usr/local/bin/rssh", "/srv/svn/home/gus"),
        entry("zoe", "/usr/bin/rssh", "/usr/local/chroot/home/zoe"),  # no user= line
        entry("root", "/bin/bash", "/root"),
    ]
    moves = migrate.rssh_moves(conf, accounts)
    assert [(m.name, m.shell, m.jail, m.programs) for m in moves] == [
        ("rudy", "scponly-py", "", ("sftp",)),
        ("gus", "scponly-pyc", "/srv/svn", ("svnserve",)),
        ("zoe", "scponly-pyc", "/usr/local/chroot", ("scp", "sftp", "rsync")),
    ]
    text = migrate.rssh_config(conf, migrate.svn_homes(conf, moves))
    parsed = policy.parse_toml(text.encode(), "imported")
    assert parsed["defaults"]["programs"] == ("rsync", "scp", "sftp")
    assert parsed["defaults"]["umask"] == 0o022
    assert parsed["users"]["dora"]["programs"] == ()  # cvs only: nothing left
    assert parsed["users"]["gus"]["svn_root"] == "/home/gus"
    assert "svn_root" not in parsed["users"]["rudy"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("allowssh\n", "line 1: unknown or malformed keyword 'allowssh'"),
        ("umask = 099\n", "line 1: umask '099' is not octal"),
        ("user=bob:022:0101:\n", "line 1: access bits '0101': 5 or 6 binary digits"),
        ("user=bob:022:0000012:\n", "line 1: access bits '0000012': 5 or 6 binary digits"),
        ("user=bob:022\n", "line 1: user= needs name:umask:access bits[:path]"),
        ("user=Bob:022:00001:\n", "line 1: invalid user name 'Bob'"),
        ("chrootpath = jail\n", "line 1: chroot path 'jail' must be absolute"),
        ('\nuser="bob:022:00001:\n', "line 2: unterminated quote"),
    ],
)
def test_bad_lines_are_refused(text: str, error: str) -> None:
    with pytest.raises(migrate.MigrateError) as raised:
        migrate.parse_rssh(text)
    assert str(raised.value).startswith(error)


def test_scponly_accounts_are_found_by_shell_name(tmp_path) -> None:
    accounts = [
        entry("ann", "/usr/local/sbin/scponlyc", f"{tmp_path}"),
        entry("ben", "/usr/bin/scponly", "/home/ben"),
        entry("cat", "/opt/scponly/sbin/scponlyc", "/srv/jail//home/cat"),
        entry("dan", "/usr/bin/rssh", "/home/dan"),
    ]
    moves = migrate.scponly_moves(accounts)
    assert [(m.name, m.shell, m.jail) for m in moves] == [
        ("ann", "scponly-pyc", str(tmp_path)),
        ("ben", "scponly-py", ""),
        ("cat", "scponly-pyc", "/srv/jail"),
    ]
