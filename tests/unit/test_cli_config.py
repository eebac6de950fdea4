"""The CLI's config file: kubectl-like contexts, mode 0600, and the file from before contexts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sdk.config import CliConfig, Context, config_path, context_name, load_config, save_config


def test_round_trip_creates_parents_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "config.toml"
    config = CliConfig.single(
        server="http://glia:8080", token="s3cret", username="alice", cluster="c1"
    )

    assert save_config(config, path) == path

    assert load_config(path) == config
    assert config.current_context == "alice@glia:8080"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_contexts_side_by_side_use_rename_delete(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    alice = Context(server="http://glia:8080", token="a", username="alice")
    bob = Context(server="http://glia:8080", token="b", username="bob")
    config = CliConfig().with_context("alice@glia:8080", alice).with_context("bob@glia:8080", bob)
    save_config(config, path)

    loaded = load_config(path)
    assert loaded.current == bob and loaded.context("alice@glia:8080") == alice
    assert loaded.using("alice@glia:8080").current == alice
    renamed = loaded.renamed("bob@glia:8080", "bob")
    assert renamed.current_context == "bob" and renamed.current == bob
    assert renamed.without("bob").current_context is None
    assert renamed.without("bob").current == Context()  # the local default server
    with pytest.raises(KeyError, match="no context 'carol'"):
        loaded.using("carol")
    with pytest.raises(KeyError, match="exists already"):
        loaded.renamed("bob@glia:8080", "alice@glia:8080")


def test_a_file_from_before_contexts_loads_as_one_context(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'server = "http://glia:8080"\ntoken = "t"\nusername = "alice"\ncluster = "c1"\n'
    )
    path.chmod(0o644)

    config = load_config(path)

    assert config.current_context == "alice@glia:8080"
    assert config.current == Context(
        server="http://glia:8080", token="t", username="alice", cluster="c1"
    )
    save_config(config, path)  # written back in the new shape, 0600
    assert "[contexts." in path.read_text()
    assert load_config(path) == config
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_path_from_env_mapping_else_home(tmp_path: Path) -> None:
    assert config_path({"GLIA_CONFIG": str(tmp_path / "c.toml")}) == tmp_path / "c.toml"
    assert config_path({}) == Path.home() / ".config" / "glia" / "config.toml"
    env = {"GLIA_CONFIG": str(tmp_path / "c.toml")}
    save_config(CliConfig.single(server="http://x"), env=env)
    assert load_config(env=env).current.server == "http://x"


def test_missing_file_is_empty_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.toml") == CliConfig()
    path = tmp_path / "config.toml"
    path.write_text(
        'current-context = "x"\nfuture = 1\n[contexts.x]\nserver = "http://glia"\nfuture = 3\n'
    )
    assert load_config(path).current == Context(server="http://glia")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("server = \n")
    with pytest.raises(ValueError, match="config.toml"):
        load_config(path)


def test_contexts_are_frozen_and_hide_the_token() -> None:
    context = Context(token="s3cret")
    with pytest.raises(AttributeError):
        context.token = "other"  # type: ignore[misc]
    assert "s3cret" not in repr(context) and "s3cret" not in repr(CliConfig.single(token="s3cret"))
    assert context.replace(username="bob").username == "bob"
    assert Context().server_url == "http://127.0.0.1:8080"
    assert context_name("https://glia.example.com/", "alice") == "alice@glia.example.com"
