#!/usr/bin/env python3
"""Generate the man pages: the prose of packaging/man/*.txt plus the live option tables.

    python3 packaging/man/manpages.py OUTDIR [--sftp-server PATH] [--date YYYY-MM-DD]

writes scponly-py.8, scponly-pyc.8, scponly-py-setup.8 and scponly-py.toml.5.

What is taken from the code, so it cannot drift:
  * scponly-py's admin subcommands and their options: the argparse parser of scponly_py/cli.py;
  * every scponly-py-setup command, argument and option with its help: the click command tree
    of setup_chroot/cli.py (walked recursively; a command without help text is an error);
  * the configuration keys: scponly_py/policy.py's SETTING_CHECKS (a key without a description
    in settings.txt, or a description of a key that does not exist, is an error), the
    program names, access modes and built-in defaults of the same module.

Only the packaging and the tests import this file: the login path never does.
The distribution's sftp-server path goes into the examples (--sftp-server; each
distribution's is in the program table, scponly_py/programs/__init__.py).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scponly_py import __version__, policy, programs  # noqa: E402 - after the path set-up above
from scponly_py import cli as shell_cli  # noqa: E402

DEBIAN_SFTP_SERVER = policy.BUILTIN_PATHS["sftp"]
PAGES = ("scponly-py.8", "scponly-pyc.8", "scponly-py-setup.8", "scponly-py.toml.5")


class Undocumented(Exception):
    """A command, option or configuration key has no documentation."""


# What render() found undocumented; all_pages(strict=True) raises if it is not empty, the
# build only warns (a missing option help must not stop a package build, the tests fail).
PROBLEMS: list[str] = []


def undocumented(what: str, fallback: str = "") -> str:
    PROBLEMS.append(what)
    return fallback


# -- the prose: plain text files next to this script ---------------------------------------------
# Markup inside text: `text` is bold (commands, options, paths, keys), *text* is italic
# (placeholders); {sftp_server} (and, in settings.txt, {programs}, {access}, {log_levels},
# {log_formats}, {transfer_log_levels}) are filled in from the code.
#
# A page file (PAGE.txt): the first line is `NAME(SECTION) -- summary`, then one `SYNOPSIS ...`
# line each. Then sections, each opened by `= HEADING`, or `= HEADING @generated` for a
# generated one (@argparse, @click, @click-global, @settings, @paths). Blocks are separated by
# blank lines: a paragraph (its lines are joined), a list item (`: term`, then its text), or an
# example between two ``` lines (verbatim, blank lines kept). settings.txt holds one list item
# per configuration key: `: KEY = SYNTAX`, then the description.

HERE = Path(__file__).resolve().parent
GENERATED = ("@argparse", "@click", "@click-global", "@settings", "@paths")


def fill(text: str, values: dict[str, str]) -> str:
    """Replace each {name} of `values` in `text`; every other brace stays as written."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def text_blocks(lines: list[str]) -> list:
    """Blocks of a section: paragraph strings, ("list", [(term, text)]), ("example", text)."""
    items: list = []
    chunk: list[str] = []
    fenced: list[str] | None = None

    def close() -> None:
        if chunk:
            if chunk[0].startswith(": "):
                item = (chunk[0][2:].strip(), " ".join(line.strip() for line in chunk[1:]))
                if items and isinstance(items[-1], tuple) and items[-1][0] == "list":
                    items[-1][1].append(item)
                else:
                    items.append(("list", [item]))
            else:
                items.append(" ".join(line.strip() for line in chunk))
            chunk.clear()

    for line in lines:
        if fenced is not None:
            if line == "```":
                items.append(("example", "\n".join(fenced)))
                fenced = None
            else:
                fenced.append(line)
        elif line == "```":
            close()
            fenced = []
        elif line.strip():
            chunk.append(line)
        else:
            close()
    if fenced is not None:
        raise ValueError("an example is not closed with ```")
    close()
    return items


def read_page(file_name: str) -> dict:
    """The page dict render() takes, from packaging/man/FILE_NAME.txt."""
    lines = (HERE / f"{file_name}.txt").read_text(encoding="utf-8").splitlines()
    title, summary = lines[0].split(" -- ", 1)
    name, section = title.rstrip(")").split("(")
    page: dict = {"name": name, "section": section, "summary": summary, "synopsis": []}
    sections: list = []
    body: list[str] = []
    for line in lines[1:]:
        if line.startswith("SYNOPSIS "):
            page["synopsis"].append(line[len("SYNOPSIS ") :])
        elif line.startswith("= "):
            heading = line[2:].strip()
            generated = heading.rsplit(" ", 1)[-1]
            if generated in GENERATED:
                sections.append((heading[: -len(generated)].strip(), generated))
            else:
                body = []
                sections.append((heading, body))
        else:
            body.append(line)
    page["sections"] = [
        (heading, content if isinstance(content, str) else text_blocks(content))
        for heading, content in sections
    ]
    return page


def config_keys() -> dict[str, tuple[str, str]]:
    """Key -> (value syntax, description), from settings.txt."""
    lines = (HERE / "settings.txt").read_text(encoding="utf-8").splitlines()
    keys = {}
    for block in text_blocks(lines):
        for term, text in block[1]:
            key, syntax = term.split(" = ", 1)
            keys[key] = (syntax, text)
    return keys


# -- roff ---------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Plain text to roff: backslashes, hyphens as minus signs, no control line at the start."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def inline(text: str) -> str:
    """`bold` and *italic* spans to roff font escapes; everything else escaped."""
    out = []
    font = None
    plain = ""
    for char in text:
        marker = {"`": "B", "*": "I"}.get(char)
        if marker is None:
            plain += char
            continue
        out.append(escape(plain))
        plain = ""
        if font == marker:
            out.append("\\fR")
            font = None
        elif font is None:
            out.append(f"\\f{marker}")
            font = marker
        else:
            plain += char  # the other marker inside a span: literal
    out.append(escape(plain))
    if font is not None:
        out.append("\\fR")
    result = "".join(out)
    # A control character at the very start of the line would be taken as a request.
    if result.startswith((".", "'")):
        result = "\\&" + result
    return result


def paragraph(text: str) -> list[str]:
    return [".PP", inline(text)]


def definition_list(items: list[tuple[str, str]]) -> list[str]:
    lines = []
    for term, text in items:
        lines += [".TP", inline(term), inline(text)]
    return lines


def example(text: str) -> list[str]:
    lines = [".PP", ".RS 4", ".nf"]
    for line in text.split("\n"):
        lines.append(escape(line) if line else "")
    return [*lines, ".fi", ".RE"]


def blocks(items: list, values: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, str):
            lines += paragraph(fill(item, values))
        elif item[0] == "list":
            lines += definition_list(
                [(fill(term, values), fill(text, values)) for term, text in item[1]]
            )
        elif item[0] == "example":
            lines += example(fill(item[1], values))
        else:
            raise ValueError(f"unknown block {item[0]!r}")
    return lines


# -- generated sections -------------------------------------------------------------------------


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _argparse_usage(name: str, subparser: argparse.ArgumentParser) -> str:
    pieces = [f"scponly-py {name}"]
    for action in subparser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            option = action.option_strings[-1]
            if action.nargs != 0:
                option += f" {(action.metavar or action.dest).upper()}"
            pieces.append(f"[{option}]")
        else:
            metavar = (action.metavar or action.dest).upper()
            if action.nargs in ("+", "*"):
                pieces.append(f"-- {metavar}...")
            elif action.nargs == "?":
                pieces.append(f"[{metavar}]")
            else:
                pieces.append(metavar)
    return " ".join(pieces)


def argparse_section() -> list[str]:
    """A subsection for every admin subcommand of scponly-py with each of its arguments."""
    parser = shell_cli._parser()
    lines: list[str] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, subparser in action.choices.items():
            if not helps.get(name):
                helps[name] = undocumented(f"scponly-py {name} has no help text", name)
            lines += [".SS", inline(f"`{_argparse_usage(name, subparser)}`")]
            lines += paragraph(_sentence(helps[name]))
            for sub_action in subparser._actions:
                if isinstance(sub_action, argparse._HelpAction):
                    continue
                if not sub_action.help:
                    sub_action.help = undocumented(f"scponly-py {name}: {sub_action.dest}", "-")
                metavar = (sub_action.metavar or sub_action.dest).upper()
                if sub_action.option_strings:
                    term = ", ".join(f"`{option}`" for option in sub_action.option_strings)
                    if sub_action.nargs != 0:
                        term += f" *{metavar}*"
                else:
                    term = f"*{metavar}*"
                lines += [".TP", inline(term), inline(_sentence(sub_action.help))]
    if not lines:
        raise Undocumented("scponly-py has no admin subcommands")
    return lines


def _click_option(parameter) -> tuple[str, str]:
    import click  # noqa: PLC0415 - only for generating

    if isinstance(parameter, click.Argument):
        return f"*{parameter.human_readable_name}*", ""
    names = ", ".join(f"`{name}`" for name in parameter.opts + parameter.secondary_opts)
    if not parameter.is_flag and not parameter.count:
        try:  # click >= 8.2 wants a context, Debian 12's 8.1 takes none
            metavar = parameter.make_metavar(click.Context(click.Command("x")))
        except TypeError:
            metavar = parameter.make_metavar()
        names += f" *{metavar}*"
    help_text = parameter.help or ""
    if not help_text:
        choices = getattr(parameter.type, "choices", None)
        help_text = undocumented(
            f"option {parameter.opts[0]} has no help text",
            f"One of {', '.join(choices)}." if choices else "",
        )
    default = parameter.default
    if parameter.show_default and default not in (None, False, ()) and not callable(default):
        help_text += f" Default: {default}."
    return names, help_text


def click_commands(command, prefix: str) -> list[tuple[str, object]]:
    """(full name, command) for every command below `command`, depth first, sorted."""
    import click  # noqa: PLC0415 - only for generating

    found = []
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if getattr(sub, "hidden", False):
                continue
            found.append((f"{prefix} {name}", sub))
            found += click_commands(sub, f"{prefix} {name}")
    return found


def _click_usage(full_name: str, command) -> str:
    import click  # noqa: PLC0415 - only for generating

    pieces = [full_name]
    for parameter in command.params:
        if isinstance(parameter, click.Argument):
            name = parameter.human_readable_name
            if parameter.nargs == -1:
                name += "..."
            pieces.append(name if parameter.required else f"[{name}]")
    if any(isinstance(parameter, click.Option) for parameter in command.params):
        pieces.insert(1, "[OPTIONS]")
    if isinstance(command, click.Group):
        pieces.append("COMMAND ...")
    return " ".join(pieces)


def click_section() -> list[str]:
    import click  # noqa: PLC0415 - only for generating

    from setup_chroot.cli import main as setup_main  # noqa: PLC0415

    lines: list[str] = []
    commands = click_commands(setup_main, "scponly-py-setup")
    if not commands:
        raise Undocumented("scponly-py-setup has no commands")
    for full_name, command in commands:
        if not command.help:
            undocumented(f"{full_name} has no help text")
        lines += [".SS", inline(f"`{_click_usage(full_name, command)}`")]
        for block in (command.help or "").split("\n\n"):
            text = " ".join(block.replace("\b", "").split())
            if text:
                lines += paragraph(text)
        for parameter in command.params:
            if isinstance(parameter, click.Argument):
                continue
            if "--help" in parameter.opts:
                continue
            term, text = _click_option(parameter)
            lines += [".TP", inline(term), inline(text)]
    return lines


def click_global() -> list[str]:
    from setup_chroot.cli import main as setup_main  # noqa: PLC0415

    lines = [".TP", inline("`-h`, `--help`"), inline("Show the help of a command and exit.")]
    for parameter in setup_main.params:
        if parameter.name == "help":
            continue
        term, text = _click_option(parameter)
        lines += [".TP", inline(term), inline(text)]
    return lines


def format_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{item}"' for item in sorted(value)) + "]"
    if isinstance(value, int):
        return f'"{value:04o}"'
    return f'"{value}"'


def settings_section() -> list[str]:
    described = config_keys()
    keys = list(policy.SETTING_CHECKS)
    for key in keys:
        if key not in described:
            undocumented(f"configuration key {key} has no description in settings.txt")
    for key in described:
        if key not in policy.SETTING_CHECKS:
            undocumented(f"settings.txt describes {key}, which policy.SETTING_CHECKS does not know")
    values = {
        "programs": ", ".join(policy.PROGRAMS),
        "access": ", ".join(policy.ACCESS_MODES),
        "log_levels": ", ".join(policy.LOG_LEVELS),
        "log_formats": ", ".join(policy.LOG_FORMATS),
        "transfer_log_levels": ", ".join(policy.TRANSFER_LOG_LEVELS),
    }
    lines = paragraph(
        "Allowed in [defaults], [group.*NAME*] and [user.*NAME*]. The default is the value "
        "used when no section sets the key."
    )
    for key in keys:
        syntax, text = described.get(key, ("value", "Not documented yet."))
        default = format_default(policy.BUILTIN_DEFAULTS[key])
        lines += [
            ".TP",
            inline(f"`{key}` = *{syntax}*"),
            inline(fill(text, values) + f" Default: {default}."),
        ]
    return lines


def paths_section(sftp_server: str) -> list[str]:
    lines = paragraph(
        "Each value is a normalised absolute path. For scponly-pyc it is the path inside the "
        "jail. Only the programs a user may run need to exist. The defaults:"
    )
    defaults = dict(policy.BUILTIN_PATHS)
    defaults["sftp"] = sftp_server
    for program, record in programs.PROGRAMS.items():
        for name in record["paths"]:
            role = record["role"] if name == program else f"run by {record['role']}"
            lines += [".TP", inline(f"`{name}` = *path*"), inline(f"{role}; {defaults[name]}")]
    where = [
        f"{programs.default_paths(distro)['sftp']} on {names}"
        for distro, names in programs.DISTROS.items()
    ]
    lines += paragraph(
        f"sftp-server is at {', '.join(where[:-1])} and {where[-1]}; the packages ship a "
        "config.toml with their own."
    )
    return lines


# -- pages --------------------------------------------------------------------------------------


def render(page: dict, sftp_server: str, date: str) -> str:
    values = {"sftp_server": sftp_server}
    title = page["name"].upper()
    lines = [
        f'.\\" Generated by packaging/man/manpages.py from scponly-py {__version__}; do not edit.',
        f'.TH "{escape(title)}" "{page["section"]}" "{date}" "scponly-py {__version__}" '
        '"scponly-py manual"',
        ".SH NAME",
        f"{escape(page['name'])} \\- {escape(page['summary'])}",
        ".SH SYNOPSIS",
    ]
    for index, synopsis in enumerate(page["synopsis"]):
        if index:
            lines.append(".br")
        lines.append(inline(synopsis))
    for heading, content in page["sections"]:
        lines.append(f".SH {heading}")
        if content == "@argparse":
            lines += argparse_section()
        elif content == "@click":
            lines += click_section()
        elif content == "@click-global":
            lines += click_global()
        elif content == "@settings":
            lines += settings_section()
        elif content == "@paths":
            lines += paths_section(sftp_server)
        else:
            lines += blocks(content, values)
    return "\n".join(lines) + "\n"


def all_pages(
    sftp_server: str = DEBIAN_SFTP_SERVER, date: str | None = None, *, strict: bool = False
) -> dict[str, str]:
    """File name -> roff text for every page; `strict`: Undocumented if anything lacks text."""
    PROBLEMS.clear()
    if date is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        moment = (
            datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
            if epoch
            else datetime.datetime.now(datetime.UTC)
        )
        date = moment.strftime("%Y-%m-%d")
    rendered = {name: render(read_page(name), sftp_server, date) for name in PAGES}
    if strict and PROBLEMS:
        raise Undocumented("; ".join(PROBLEMS))
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the scponly-py man pages.")
    parser.add_argument("outdir", help="directory to write the pages to")
    parser.add_argument("--sftp-server", default=DEBIAN_SFTP_SERVER, help="distribution's path")
    parser.add_argument("--date", help="date in the page footer (default: SOURCE_DATE_EPOCH)")
    parser.add_argument("--strict", action="store_true", help="fail if anything is undocumented")
    options = parser.parse_args(argv)
    try:
        pages = all_pages(options.sftp_server, options.date, strict=options.strict)
    except Undocumented as error:
        print(f"manpages: undocumented: {error}", file=sys.stderr)
        return 1
    for problem in PROBLEMS:
        print(f"manpages: warning: undocumented: {problem}", file=sys.stderr)
    outdir = Path(options.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (outdir / name).write_text(text, encoding="utf-8")
    print(f"manpages: wrote {', '.join(sorted(pages))} to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
