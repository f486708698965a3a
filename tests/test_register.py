"""The promotion rule (pure) and the alias-moving loop against a fake registry.

The fake registry lets a test put another registration's write at an exact point of
`promote`: during the champion's scoring, or right after our own write; the threaded test
lets real interleavings happen.
"""

import random
import threading
import time
from types import SimpleNamespace

import pytest

from stages.params import RegisterParams
from stages.register import CHAMPION, PREVIOUS, decide, promote

ACCURACY = RegisterParams(floor=0.7)


@pytest.mark.parametrize(
    "rule, candidate, champion, promoted",
    [
        (ACCURACY, 0.75, None, True),  # first model: only the floor applies
        (ACCURACY, 0.65, None, False),  # below the floor, even with no champion
        (ACCURACY, 0.7, None, True),  # on the floor is enough
        (RegisterParams(floor=None), 0.1, None, True),  # no floor
        (ACCURACY, 0.8, 0.75, True),  # better
        (ACCURACY, 0.75, 0.75, False),  # equal is not better
        (ACCURACY, 0.72, 0.75, False),  # worse
        (ACCURACY, 0.65, 0.6, False),  # better than the champion, but below the floor
        (RegisterParams(floor=0.5, min_improvement=0.01), 0.57, 0.56, True),  # exactly the margin
        (RegisterParams(floor=0.5, min_improvement=0.02), 0.57, 0.56, False),  # short of the margin
        (RegisterParams(floor=0.5, min_relative_improvement=0.1), 0.85, 0.8, False),  # needs 0.08
        (RegisterParams(floor=0.5, min_relative_improvement=0.1), 0.89, 0.8, True),
        (RegisterParams(floor=0.5, min_improvement=0.01, min_relative_improvement=0.1), 0.89, 0.8, True),
        (RegisterParams(floor=0.5, min_improvement=0.1, min_relative_improvement=0.01), 0.89, 0.8, False),
        (RegisterParams(metric="loss", floor=0.7), 0.3, 0.4, True),  # lower loss is better
        (RegisterParams(metric="loss", floor=0.7), 0.5, 0.4, False),
        (RegisterParams(metric="loss", floor=0.7), 0.4, 0.4, False),
        (RegisterParams(metric="loss", floor=0.7), 0.75, None, False),  # above the maximum loss
        (RegisterParams(metric="loss", floor=0.7, min_relative_improvement=0.5), 0.25, 0.4, False),  # needs 0.2
        (ACCURACY, float("nan"), None, False),  # an undefined score never wins
        (RegisterParams(metric="roc_auc", floor=0.5), 0.8, float("nan"), True),  # the champion's is undefined
    ],
)
def test_promotion_rule(rule, candidate, champion, promoted):
    decision = decide(rule, candidate, champion)
    assert decision.promote is promoted
    assert rule.metric in decision.reason


def test_reasons_say_why():
    assert "below the floor register.floor=0.7" in decide(ACCURACY, 0.65, None).reason
    assert "no champion yet" in decide(ACCURACY, 0.75, None).reason
    assert "no improvement" in decide(ACCURACY, 0.75, 0.75).reason
    assert "improves by 0.0100 < required 0.0200" in decide(
        RegisterParams(floor=None, min_improvement=0.02), 0.81, 0.80).reason
    assert "lower is better" in decide(RegisterParams(metric="loss", floor=None), 0.3, 0.4).reason


class FakeRegistry:
    """The two registry calls `promote` makes, atomic each, with hooks between them."""

    def __init__(self, champion=None, delay=0.0):
        self.aliases = {CHAMPION: champion} if champion else {}
        self.lock = threading.Lock()
        self.delay = delay
        self.after_set = []  # callables run once, after our next alias write

    def _pause(self):
        if self.delay:
            time.sleep(random.uniform(0, self.delay))

    def get_model_version_by_alias(self, name, alias):
        self._pause()
        with self.lock:
            if alias not in self.aliases:
                from mlflow.exceptions import MlflowException

                raise MlflowException(f"alias {alias} not found")
            return SimpleNamespace(version=self.aliases[alias])

    def set_registered_model_alias(self, name, alias, version):
        self._pause()
        with self.lock:
            self.aliases[alias] = str(version)
        if alias == CHAMPION and self.after_set:
            self.after_set.pop(0)()


SCORES = {"1": 0.75, "2": 0.90, "3": 0.85, "4": 0.95}


def score_of(model_version):
    return SCORES[model_version.version], False


def test_first_promotion_sets_the_alias():
    registry = FakeRegistry()
    outcome = promote(registry, "m", "2", SCORES["2"], ACCURACY, score_of)
    assert outcome.decision.promote and registry.aliases == {CHAMPION: "2"}


def test_promotion_keeps_the_displaced_champion_as_previous():
    registry = FakeRegistry(champion="1")
    outcome = promote(registry, "m", "2", SCORES["2"], ACCURACY, score_of)
    assert outcome.decision.promote and outcome.champion_version == "1"
    assert registry.aliases == {CHAMPION: "2", PREVIOUS: "1"}


def test_better_model_promoted_while_we_scored_wins():
    # We compare with v1 (0.75) and decide to promote v2 (0.90); meanwhile another
    # registration makes v4 (0.95) champion. Moving the alias now would demote a better model.
    registry = FakeRegistry(champion="1")

    def slow_score(model_version):
        if model_version.version == "1":
            registry.aliases[CHAMPION] = "4"
        return score_of(model_version)

    outcome = promote(registry, "m", "2", SCORES["2"], ACCURACY, slow_score)
    assert registry.aliases[CHAMPION] == "4"
    assert not outcome.decision.promote and outcome.champion_version == "4"


def test_worse_model_written_after_ours_is_replaced_again():
    registry = FakeRegistry(champion="1")
    registry.after_set.append(lambda: registry.aliases.update({CHAMPION: "3"}))  # 0.85 < 0.90
    outcome = promote(registry, "m", "2", SCORES["2"], ACCURACY, score_of)
    assert registry.aliases[CHAMPION] == "2"
    assert outcome.decision.promote and outcome.champion_version == "3"


def test_better_model_written_after_ours_stays():
    registry = FakeRegistry(champion="1")
    registry.after_set.append(lambda: registry.aliases.update({CHAMPION: "4"}))
    outcome = promote(registry, "m", "2", SCORES["2"], ACCURACY, score_of)
    assert registry.aliases[CHAMPION] == "4"
    assert not outcome.decision.promote


def test_rerun_for_the_champion_itself_changes_nothing():
    registry = FakeRegistry(champion="2")
    outcome = promote(registry, "m", "2", SCORES["2"], ACCURACY, score_of)
    assert outcome.decision.promote and "already the champion" in outcome.decision.reason
    assert registry.aliases == {CHAMPION: "2"}


@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_registrations_end_on_the_best(attempt):
    # Three registrations start together against champion v1, each registry call and each
    # scoring delayed at random; the settle wait (40 ms) outlasts the gap between a
    # writer's last read and its write (<= 10 ms).
    random.seed(attempt)
    registry = FakeRegistry(champion="1", delay=0.005)
    start = threading.Barrier(3)
    outcomes = {}

    def register(version):
        def slow_score(model_version):
            time.sleep(random.uniform(0, 0.02))
            return score_of(model_version)

        start.wait()
        outcomes[version] = promote(registry, "m", version, SCORES[version], ACCURACY, slow_score, settle=0.04)

    threads = [threading.Thread(target=register, args=(v,)) for v in random.sample(["2", "3", "4"], 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert registry.aliases[CHAMPION] == "4"
    assert outcomes["4"].decision.promote
