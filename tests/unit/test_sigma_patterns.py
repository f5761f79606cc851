"""Wildcard patterns compiled by the Sigma engine agree with plain glob matching."""

import itertools
import random
import re

from sigma.types import SigmaString

from security.modules.sigma.patterns import compile_string_patterns


def _reference_glob(pattern: str, value: str) -> bool:
    """Naive backtracking glob: correct on small inputs, which is all it is used for."""
    regex = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def test_random_wildcard_patterns_agree_with_reference_glob():
    generator = random.Random(6)
    values = ["".join(chars) for size in range(6) for chars in itertools.product("ab", repeat=size)]
    for _ in range(300):
        pattern = "".join(generator.choice("ab*?") for _ in range(generator.randint(0, 6)))
        test = compile_string_patterns([SigmaString(pattern)], lower=False)

        for value in values:
            assert test(value) == _reference_glob(pattern, value), (pattern, value)


def test_several_patterns_match_when_any_matches():
    test = compile_string_patterns(
        [SigmaString(text) for text in ("a*b?c", "x", "pre*", "*suf", "*mid*")], lower=True
    )

    assert [test(value) for value in ("a--bxc", "x", "prefix", "a suf", "a mid b")] == [True] * 5
    assert not test("a--bc")
