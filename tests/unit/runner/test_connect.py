"""runner.connect: a meshed task's Service Connect state survives the store's JSON."""

from runner.connect import TaskConnect, TaskIngress, connect_from_json, connect_json


def test_no_connect_is_the_empty_string():
    assert connect_json(None) == ""
    assert connect_from_json("") is None


def test_round_trip():
    c = TaskConnect("shop.local", (TaskIngress("web", 15100, 8080, "http"),),
                    {"db.shop.local": "127.255.0.2"})
    assert connect_from_json(connect_json(c)) == c
