from __future__ import annotations

import pytest

from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError
from workflows.expressions.govaluate import evaluate_when


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("heads == heads", True),
        ("tails == heads", False),
        ("tails != heads", True),
        ('"running" != "failed"', True),
        ("'a' == \"a\"", True),
        ("Succeeded == Succeeded", True),
        ("Failed == Succeeded", False),
        ("1.2.3 == 1.2.3", True),
        ("1.2.3 == 1.2.4", False),
        ("my-value == my-value", True),
        ("my-value == my_value", False),
        ("v1.2-rc == 'v1.2-rc'", True),
        ("7 > 5", True),
        ("10 > 9", True),
        ("'10' > '9'", False),
        ("5 < 3", False),
        ("3 <= 3", True),
        ("3 >= 4", False),
        ("1 == 1.0", True),
        ("0x10 == 16", True),
        ("1 == '1'", False),
        ("true == true", True),
        ("true", True),
        ("false", False),
        ("true == 'true'", False),
        ("!false", True),
        ("!(1 > 2)", True),
        ("heads =~ hea", True),
        ("tails =~ hea", False),
        ("tails !~ hea", True),
        ("'abc' =~ '^a.c$'", True),
        ("5 != 1 && 5 != 2", True),
        ("2 != 1 && 2 != 2", False),
        ("false || heads == heads", True),
        ("true || 1 + 'x' == 3", True),
        ("false && 1 + 'x' == 3", False),
        ("( heads == heads && tails == tails ) || ( tails == heads )", True),
        ("a in (a, b)", True),
        ("c in (a, b)", False),
        ("2 in (1, 2)", True),
        ("1 + 2 == 3", True),
        ("2 * 3 - 1 == 5", True),
        ("7 / 2 == 3.5", True),
        ("7 % 4 == 3", True),
        ("2 ** 3 == 8", True),
        ("-5 < 0", True),
        ("a + b == ab", True),
        ("a + 1 == a1", True),
        ("(6 & 3) == 2", True),
        ("(6 | 1) == 7", True),
        ("(6 ^ 3) == 5", True),
        ("(1 << 3) == 8", True),
        ("~0 == -1", True),
        ("true ? heads == heads : false", True),
        ("1 > 2 ? true : false", False),
        ("[my var] == 'my var'", True),
        ("'it\\'s' == \"it's\"", True),
        ("", True),
        ("   ", True),
    ],
)
def test_evaluate_when_follows_govaluate(condition: str, expected: bool) -> None:
    assert evaluate_when(condition) is expected


@pytest.mark.parametrize(
    ("condition", "reason", "position"),
    [
        ("a ==", "unexpected end", 4),
        ("== a", "unexpected token '=='", 0),
        ("(a == a", "expected ')'", 7),
        ("a == a)", "unexpected token ')'", 6),
        ("a == 'open", "unclosed string", 5),
        ("a == [open", "unclosed '['", 5),
        ("a = b", "invalid token '='", 2),
        ("a == $b", "invalid token '$'", 5),
        ("true ? a", "expected ':'", 8),
    ],
)
def test_evaluate_when_malformed_raises_syntax_error(condition: str, reason: str, position: int) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        evaluate_when(condition)
    assert (caught.value.reason, caught.value.position) == (reason, position)


@pytest.mark.parametrize(
    ("condition", "match"),
    [
        ("heads", "expected a boolean result, got 'heads'"),
        ("1 + 1", "expected a boolean result, got '2'"),
        ("a < 1", "it is not a number"),
        ("a && true", "it is not a boolean"),
        ("!a", "it is not a boolean"),
        ("a - b == c", "it is not a number"),
        ("1 =~ a", "it is not a string"),
        ("a =~ '('", "error parsing regexp"),
        ("a in (a)", "it is not an array"),
        ("a ? b : c", "it is not a boolean"),
    ],
)
def test_evaluate_when_type_mismatch_raises_evaluation_error(condition: str, match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        evaluate_when(condition)
