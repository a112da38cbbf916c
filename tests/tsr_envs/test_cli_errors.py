"""Bad input to ``tsr eval`` and ``tsr serve-webshop`` is one clear line on stderr and exit status 2."""

from __future__ import annotations

import json
import socket

import pytest

from tsr_envs.cli import main


@pytest.fixture
def malformed_catalog(tmp_path):
    """Valid JSON of the wrong shape under the original file names."""
    (tmp_path / "items_shuffle.json").write_text(json.dumps({"not": "a list of products"}))
    (tmp_path / "items_ins_v2.json").write_text(json.dumps([1, 2, 3]))
    return tmp_path


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def one_line_error(capsys, argv: list[str], message: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "FrozenLake-v1"], "FrozenLake-v1 is not a text environment"),
        (["--env", "tsr/FrozenLake-v0", "--out", "/proc/no-such-dir"], "cannot write results to"),
        (["--env", "tsr/WebShop-v0", "--env-arg", "catalog=/no/such/folder"], "no WebShop catalogue at"),
    ],
)
def test_eval_refuses_cleanly(capsys, argv, message):
    one_line_error(capsys, ["eval", "--agent", "random", "--episodes", "1", *argv], message)


def test_eval_refuses_a_malformed_catalogue(capsys, malformed_catalog):
    argv = ["eval", "--agent", "random", "--episodes", "1", "--env", "tsr/WebShop-v0"]
    one_line_error(capsys, [*argv, "--env-arg", f"catalog={malformed_catalog}"], "original format")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--catalog", "/no/such/folder"], "no WebShop catalogue at /no/such/folder"),
        (["--port", "-1"], "--port must be in 0..65535"),
        (["--num-products", "0"], "number of products must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--max-sessions", "0"], "--max-sessions must be at least 1"),
        (["--session-ttl", "0"], "--session-ttl must be a positive number"),
        (["--session-ttl", "nan"], "--session-ttl must be a positive number"),
    ],
)
def test_serve_webshop_refuses_cleanly(capsys, flags, message):
    one_line_error(capsys, ["serve-webshop", *flags], message)


def test_serve_webshop_refuses_malformed_catalogue_and_busy_port(capsys, malformed_catalog, busy_port):
    one_line_error(capsys, ["serve-webshop", "--catalog", str(malformed_catalog)], "original format")
    one_line_error(
        capsys, ["serve-webshop", "--port", str(busy_port)], f"cannot listen on 127.0.0.1:{busy_port}"
    )
