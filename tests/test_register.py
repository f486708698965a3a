import pytest

from stages.register import decide


@pytest.mark.parametrize(
    "metric, candidate, champion, promoted",
    [
        ("accuracy", 0.7, None, True),  # first model
        ("accuracy", 0.8, 0.7, True),  # better
        ("accuracy", 0.7, 0.7, False),  # equal is not better
        ("accuracy", 0.6, 0.7, False),  # worse
        ("loss", 0.3, 0.4, True),  # lower loss is better
        ("loss", 0.5, 0.4, False),
    ],
)
def test_promotion_rule(metric, candidate, champion, promoted):
    decision, reason = decide(metric, candidate, champion)
    assert decision is promoted
    assert metric in reason
