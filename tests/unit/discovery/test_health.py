from discovery.health import Counters, step


def run(status: str, results: list[bool], threshold: int) -> list[str]:
    counters, seen = Counters(status), []
    for ok in results:
        counters = step(counters, ok, threshold)
        seen.append(counters.status)
    return seen


def test_an_instance_turns_unhealthy_after_threshold_consecutive_failures():
    assert run("HEALTHY", [False, False, False], 3) == ["HEALTHY", "HEALTHY", "UNHEALTHY"]


def test_a_success_resets_the_failure_streak():
    assert run("HEALTHY", [False, False, True, False, False], 3) == ["HEALTHY"] * 5


def test_recovery_needs_threshold_consecutive_successes():
    seen = run("UNHEALTHY", [True, False, True, True], 2)
    assert seen == ["UNHEALTHY", "UNHEALTHY", "UNHEALTHY", "HEALTHY"]


def test_threshold_one_flips_on_every_change():
    assert run("HEALTHY", [False, True, False], 1) == ["UNHEALTHY", "HEALTHY", "UNHEALTHY"]


def test_an_unchecked_instance_becomes_healthy_on_its_first_success():
    assert run("UNKNOWN", [True], 3) == ["HEALTHY"]
