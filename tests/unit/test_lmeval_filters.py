"""lm-eval's built-in filters and exact_match options, on worked examples of lm-eval 0.4.13's behaviour."""

from __future__ import annotations

import pytest

from harness.core.api import UserError
from harness.data.lmeval_filters import apply, check_filters, exact_match

FLEXIBLE = [{"function": "regex", "group_select": -1, "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
            {"function": "take_first"}]


def test_regex_takes_the_selected_match_and_its_first_nonempty_group() -> None:
    assert apply(FLEXIBLE, ["Total $1,002. Then 5 more"], {}) == "5"  # the last match; its non-empty group
    assert apply(FLEXIBLE, ["costs $1,002."], {}) == "$1,002."
    assert apply([{"function": "regex"}], ["so #### 42"], {}) == "42"  # lm-eval's default pattern
    assert apply([{"function": "regex", "fallback": "none"}], ["no number"], {}) == "none"


def test_selection_and_transformation_filters() -> None:
    assert apply([{"function": "majority_vote"}, {"function": "take_first"}], ["a", "b", "b", "a", "b"], {}) == "b"
    assert apply([{"function": "majority_vote"}], ["x", "y"], {}) == "x"  # a tie keeps the first seen
    assert apply([{"function": "take_first_k", "k": 2}, {"function": "lowercase"}], ["AB", "C"], {}) == "ab"
    assert apply([{"function": "remove_whitespace"}, {"function": "uppercase"}], ["  yes \n"], {}) == "YES"


def test_multi_choice_regex_falls_back_to_choice_text_then_colon_letter() -> None:
    steps = [{"function": "multi_choice_regex", "regex_pattern": r"(\([A-D]\))", "ignore_case": True,
              "ignore_punctuation": True}, {"function": "take_first"}]
    doc = {"choices": ["Paris", "Rome", "Oslo"]}
    assert apply(steps, ["It is (C) surely"], doc) == "(C)"
    assert apply(steps, ["I think ROME!"], doc) == "(B)"
    assert apply(steps, ["answer: A"], doc) == "(A)"
    assert apply(steps, ["no idea"], doc) == "[invalid]"


def test_exact_match_options_apply_to_both_sides() -> None:
    options = {"ignore_case": True, "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}
    assert exact_match("1,002", ["1000 + 2 = 1002\n#### 1002"], options) == 1.0
    assert exact_match("$1002.", ["#### 1002"], options) == 1.0
    assert exact_match("1003", ["#### 1002"], options) == 0.0
    assert exact_match("Hello, World", ["hello world"], {"ignore_case": True, "ignore_punctuation": True}) == 1.0
    assert exact_match("abc123", ["abc"], {"ignore_numbers": True}) == 1.0
    assert exact_match("Yes", ["yes"], {}) == 0.0


@pytest.mark.parametrize("filters,field", [
    ([{"name": "x", "filter": [{"function": "arg_max"}]}], "filter_list[0].filter[0].function"),
    ([{"name": "x", "filter": [{"function": "regex", "regex_pattern": "("}]}], "filter_list[0].filter[0].regex_pattern"),
    ([{"name": "x", "filter": [{"function": "regex", "colour": 1}]}], "filter_list[0].filter[0].colour"),
    ("take_first", "filter_list"),
])
def test_unsupported_filters_are_named(filters: object, field: str) -> None:
    with pytest.raises(UserError) as err:
        check_filters(filters, "t.yaml")
    assert str(err.value).startswith(f"t.yaml: {field}:")
