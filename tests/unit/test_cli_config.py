from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sdk.config import CliConfig, config_path, load_config, save_config


def test_round_trip_creates_parents_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "config.toml"
    config = CliConfig(server="http://glia:8080", token="s3cret", username="alice", cluster="c1")

    assert save_config(config, path) == path

    assert load_config(path) == config
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_overwrite_keeps_0600_and_drops_cleared_fields(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('server = "http://old"\n')
    path.chmod(0o644)
    config = CliConfig(server="http://glia", token="t", username="alice")

    save_config(config.with_token(None), path)

    assert load_config(path) == CliConfig(server="http://glia", username="alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_path_from_env_mapping_else_home(tmp_path: Path) -> None:
    assert config_path({"GLIA_CONFIG": str(tmp_path / "c.toml")}) == tmp_path / "c.toml"
    assert config_path({}) == Path.home() / ".config" / "glia" / "config.toml"
    save_config(CliConfig(server="http://x"), env={"GLIA_CONFIG": str(tmp_path / "c.toml")})
    assert load_config(env={"GLIA_CONFIG": str(tmp_path / "c.toml")}).server == "http://x"


def test_missing_file_is_empty_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.toml") == CliConfig()
    path = tmp_path / "config.toml"
    path.write_text('server = "http://glia"\nfuture_option = 3\n')
    assert load_config(path) == CliConfig(server="http://glia")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("server = \n")
    with pytest.raises(ValueError, match="config.toml"):
        load_config(path)


def test_config_is_frozen_and_hides_the_token() -> None:
    config = CliConfig(token="s3cret")
    with pytest.raises(AttributeError):
        config.token = "other"  # type: ignore[misc]
    assert "s3cret" not in repr(config)
    assert config.with_cluster("c").cluster == "c"
    assert config.replace(username="bob").username == "bob"
    assert CliConfig().server_url == "http://127.0.0.1:8080"
