#!/usr/bin/env python3
"""atheris harness for the tokenizer: `python fuzz/fuzz_words.py [libFuzzer options] [corpus dirs]`.

Oracles (any failure is a crash that libFuzzer saves as crash-*):
- only `Refusal` may escape `words.split`;
- an accepted command contains no control character and is within the limits;
- every word can be handed to execve (surrogateescape round trip);
- quoting the words and splitting again gives the same words (`join`/`split`).
"""

from __future__ import annotations

import atheris
import common

with atheris.instrument_imports(include=["scponly_py"]):
    common.import_instrumented()
    from scponly_py import words
    from scponly_py.outcome import Refusal
from tests.oracles import has_control_character


def test_one_input(data: bytes) -> None:
    command = common.decode(data)
    try:
        result = words.split(command)
    except Refusal as refusal:
        if not isinstance(refusal.reason, str) or not refusal.reason:
            raise AssertionError("a refusal without a reason") from None
        return
    if has_control_character(command):
        raise AssertionError(f"accepted a control character: {command!r}")
    if len(command) > words.MAX_COMMAND_LENGTH or not 1 <= len(result) <= words.MAX_WORDS:
        raise AssertionError(f"limits not enforced: {len(command)} chars, {len(result)} words")
    for word in result:
        if word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") != word:
            raise AssertionError(f"word does not survive execve: {word!r}")
    again = words.split(words.join(result))
    if again != result:
        raise AssertionError(f"join/split changed {result!r} into {again!r}")


if __name__ == "__main__":
    common.fuzz(test_one_input)
