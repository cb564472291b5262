"""Failed-login limits (registry.throttle): pure, on a given clock."""

from registry.throttle import FailureLimiter


def fail_until_refused(limiter, user, address, now):
    n = 0
    while not (t := limiter.attempt(user, address, now)).retry_after:
        n += 1
    return n, t.retry_after


def test_an_address_is_refused_after_its_burst_with_the_seconds_to_wait_and_refills():
    limiter = FailureLimiter(address=(5, 2.0), user=(100, 1.0))
    n, wait = fail_until_refused(limiter, "u", "10.0.0.1", now=0.0)
    assert (n, wait) == (5, 2)
    assert limiter.attempt("other-user", "10.0.0.1", 0.5).retry_after == 2  # ceil(1.5)
    assert limiter.attempt("u", "10.0.0.2", 0.5).retry_after == 0  # another address is not held
    assert limiter.attempt("u", "10.0.0.1", 2.0).retry_after == 0  # one failure refilled
    assert limiter.attempt("u", "10.0.0.1", 2.0).retry_after == 2


def test_a_user_is_refused_after_its_burst_from_any_address():
    limiter = FailureLimiter(address=(100, 1.0), user=(3, 10.0))
    for i in range(3):
        assert limiter.attempt("victim", f"10.0.0.{i}", 0.0).retry_after == 0
    assert limiter.attempt("victim", "10.0.0.99", 1.0).retry_after == 9
    assert limiter.attempt("someone", "10.0.0.99", 1.0).retry_after == 0


def test_a_success_gives_back_its_charge_so_busy_clients_are_never_held():
    limiter = FailureLimiter(address=(3, 10.0), user=(3, 10.0))
    for _ in range(1000):
        ticket = limiter.attempt("ci", "10.0.0.1", 0.0)
        assert ticket.retry_after == 0
        limiter.succeeded("ci", "10.0.0.1", ticket, 0.0)


def test_a_known_user_and_address_pair_is_not_locked_out_by_an_attack_on_the_user():
    limiter = FailureLimiter(address=(100, 1.0), user=(3, 10.0), known_for=60.0)
    ticket = limiter.attempt("alice", "10.0.0.1", 0.0)
    limiter.succeeded("alice", "10.0.0.1", ticket, 0.0)
    fail_until_refused(limiter, "alice", "192.0.2.66", 1.0)
    assert limiter.attempt("alice", "192.0.2.7", 1.0).retry_after > 0  # a new address waits
    assert limiter.attempt("alice", "10.0.0.1", 1.0).retry_after == 0  # her own does not


def test_the_tables_stay_bounded():
    limiter = FailureLimiter(max_entries=50)
    for i in range(500):
        limiter.attempt(f"user{i}", f"10.0.{i // 250}.{i % 250}", float(i))
    assert len(limiter._users._buckets) <= 50 and len(limiter._addresses._buckets) <= 50
