"""caesar: decode words enciphered with a Caesar shift (given at levels 1-2,
unknown at level 3) or a Vigenere key (given, levels 4-5)."""

from __future__ import annotations

from typing import Any

from . import _common as c

NAME = "caesar"

# level: (cipher, words (lo, hi), key length, key given)
_LEVELS = {
    1: ("caesar", (1, 2), 0, True),
    2: ("caesar", (3, 4), 0, True),
    3: ("caesar", (3, 5), 0, False),
    4: ("vigenere", (3, 4), 3, True),
    5: ("vigenere", (5, 6), 5, True),
}
CIPHERS = ("caesar", "vigenere")
_A = ord("a")


def shift_text(text: str, shifts: list[int], sign: int) -> str:
    """Shifts each letter by the next of ``shifts`` (cycled; only letters
    advance the key), times ``sign``; other characters stay."""
    out, k = [], 0
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr(_A + (ord(ch) - _A + sign * shifts[k % len(shifts)]) % 26))
            k += 1
        else:
            out.append(ch)
    return "".join(out)


def _shifts(task: dict[str, Any]) -> list[int]:
    if task["cipher"] == "caesar":
        return [task["key"]]
    return [ord(ch) - _A for ch in task["key"]]


def generate(rng: Any, level: int) -> dict[str, Any]:
    cipher, (lo, hi), keylen, given = _LEVELS[level]
    while True:
        words = [rng.choice(c.WORDS) for _ in range(rng.randint(lo, hi))]
        plaintext = " ".join(words)
        if cipher == "caesar":
            key: Any = rng.randint(1, 25)
        else:
            key = "".join(chr(_A + rng.randint(1, 25)) for _ in range(keylen))
        task = {"cipher": cipher, "key": key, "key_given": given, "plaintext": plaintext}
        task["ciphertext"] = shift_text(plaintext, _shifts(task), 1)
        if given or _unique_shift(task["ciphertext"]):
            return task


def _unique_shift(ciphertext: str) -> bool:
    """Whether exactly one Caesar shift turns every word into a listed word."""
    hits = 0
    for s in range(26):
        if all(w in c.WORD_SET for w in shift_text(ciphertext, [s], -1).split()):
            hits += 1
    return hits == 1


def prompt(task: dict[str, Any]) -> str:
    ct = task["ciphertext"]
    if task["cipher"] == "caesar":
        if task["key_given"]:
            how = f"Each letter was shifted forward in the alphabet by {task['key']} (wrapping around from z to a)."
        else:
            how = (
                "Each letter was shifted forward in the alphabet by the same unknown amount between 1 and 25 "
                "(wrapping around from z to a). The original text is made of common English words."
            )
        name = "a Caesar cipher"
    else:
        how = (
            f'It was encrypted with the Vigenere cipher and the key "{task["key"]}": the n-th letter of the text '
            "is shifted forward by the alphabet position of the n-th letter of the key (a=0, b=1, ..., z=25), "
            "the key repeating as needed and advancing only on letters (spaces are kept and do not use up key letters)."
        )
        name = "a Vigenere cipher"
    return (
        f"This text was encrypted with {name}:\n\n    {ct}\n\n{how}\n\n"
        "Decrypt it. Answer with the original text in lowercase, words separated by single spaces."
    )


def check(task: dict[str, Any], answer: str) -> bool:
    return bool(c.words_of(answer) == task["plaintext"].split())


def answer(task: dict[str, Any]) -> str | None:
    return str(task["plaintext"])


def inline(task: dict[str, Any]) -> dict[str, Any]:
    cipher = c.need(task, "cipher", NAME)
    if cipher not in CIPHERS:
        raise c.bad('caesar task field `cipher` must be "caesar" or "vigenere"')
    plaintext = " ".join(c.need_str(task, "plaintext", NAME).lower().split())
    if any(not ("a" <= ch <= "z" or ch == " ") for ch in plaintext):
        raise c.bad("caesar task field `plaintext` may hold only letters and spaces")
    key = c.need(task, "key", NAME)
    if cipher == "caesar":
        if not c.is_int(key) or not 1 <= key <= 25:
            raise c.bad("caesar task field `key` must be a shift from 1 to 25 for the caesar cipher")
    elif not (isinstance(key, str) and key.isalpha() and key.isascii() and 1 <= len(key) <= 50):
        raise c.bad("caesar task field `key` must be a word of letters for the vigenere cipher")
    else:
        key = key.lower()
    given = task.get("key_given", True)
    if not isinstance(given, bool) or (cipher == "vigenere" and not given):
        raise c.bad("caesar task field `key_given` must be a boolean (and true for the vigenere cipher)")
    out = {"cipher": cipher, "key": key, "key_given": given, "plaintext": plaintext}
    out["ciphertext"] = shift_text(plaintext, _shifts(out), 1)
    return out
