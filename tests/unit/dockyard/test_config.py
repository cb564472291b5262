import pytest

from dockyard.config import ConfigError, load


def test_flags_beat_env_beat_file_beat_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('control_port = 9001\nregistry_port = 9002\nregion = "eu-west-1"\n')
    env = {"DOCKYARD_CONTROL_PORT": "9101", "DOCKYARD_DATA_DIR": str(tmp_path)}
    cfg = load({"control_port": 9201}, str(f), env)
    assert (cfg.control_port, cfg.registry_port, cfg.region, cfg.dns_port) == (9201, 9002, "eu-west-1", 8053)
    assert load({}, str(f), env).control_port == 9101


def test_the_data_dir_toml_is_read_when_no_file_is_named(tmp_path):
    (tmp_path / "dockyard.toml").write_text("dns_port = 5353\n")
    assert load({"data_dir": str(tmp_path)}, None, {}).dns_port == 5353


@pytest.mark.parametrize(
    "text,message",
    [("control_port = 'x'", "not a valid int"), ("nope = 1", "unknown keys nope"), ("[", "not valid TOML")],
)
def test_bad_config_files_say_what_is_wrong(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load({}, str(f), {})


def test_access_log_false_in_toml_turns_it_off(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("access_log = false\n")
    assert load({}, str(f), {}).access_log == "false"
    assert load({}, None, {}).access_log == "true"


def test_state_url_is_empty_for_sqlite_in_the_data_dir_or_a_postgresql_url(tmp_path):
    assert load({"data_dir": str(tmp_path)}, env={}).state_target == tmp_path / "state.db"
    url = "postgresql://dockyard:pw@db:5432/dockyard"
    assert load({"data_dir": str(tmp_path)}, env={"DOCKYARD_STATE_URL": url}).state_target == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@db/x", "is not a postgresql:// URL"),
        ("state.db", "is not a postgresql:// URL"),
        ("postgresql://u:secret@db:70000/x", "has a bad port"),
        ("postgresql://u:secret@db:5432", "names no database"),
    ],
)
def test_a_malformed_state_url_is_refused_without_its_password(tmp_path, url, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load({"data_dir": str(tmp_path), "state_url": url}, env={})
    assert "secret" not in str(caught.value)
