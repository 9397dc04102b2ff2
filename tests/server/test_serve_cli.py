"""``nasbench serve`` and ``nasbench health`` configuration: every flag falls back to its NASBENCH_* variable,
flags win over variables, and --insecure (or NASBENCH_INSECURE=1) is the explicit way to serve beyond loopback
without protection. The server is not started: ``app.run`` receives the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench import _cli
from nasbench.errors import ConfigurationError
from nasbench_server import app, security
from nasbench_server.config import ServerConfig

ENVIRONMENT = {
    "NASBENCH_STORE": "/data/env.lmdb",
    "NASBENCH_HOST": "127.0.0.2",
    "NASBENCH_PORT": "50999",
    "NASBENCH_WORKERS": "3",
    "NASBENCH_MAX_BATCH": "1234",
    "NASBENCH_MAX_SAMPLE": "567",
    "NASBENCH_MAX_CONCURRENT_RPCS": "89",
    "NASBENCH_GRACE": "2.5",
    "NASBENCH_LOG_LEVEL": "DEBUG",
    "NASBENCH_PORT_FILE": "/tmp/env-port",
}


@pytest.fixture()
def captured(monkeypatch) -> list:
    """The (config, port_file) each ``nasbench serve`` hands to ``app.run``."""
    calls: list = []
    monkeypatch.setattr(app, "run", lambda config, port_file=None: calls.append((config, port_file)))
    for name in [*ENVIRONMENT, "NASBENCH_TOKEN", "NASBENCH_TOKEN_FILE", "NASBENCH_INSECURE", "NASBENCH_TLS_CERT"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NASBENCH_TLS_KEY", raising=False)
    return calls


def test_defaults(captured) -> None:
    assert _cli.main(["serve"]) == 0
    ((config, port_file),) = captured
    assert config == ServerConfig() and port_file is None
    assert (config.host, config.port, config.workers, config.insecure, config.token) == (
        "127.0.0.1",
        50051,
        1,
        False,
        None,
    )


def test_every_variable_is_a_fallback(captured, monkeypatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NASBENCH_TOKEN", "from-the-environment")
    assert _cli.main(["serve"]) == 0
    ((config, port_file),) = captured
    assert config == ServerConfig(
        store="/data/env.lmdb",
        host="127.0.0.2",
        port=50999,
        workers=3,
        max_batch=1234,
        max_sample=567,
        max_concurrent_rpcs=89,
        grace_s=2.5,
        log_level="DEBUG",
        token="from-the-environment",
    )
    assert port_file == Path("/tmp/env-port")


def test_flags_win_over_variables(captured, monkeypatch, tmp_path: Path) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NASBENCH_TOKEN", "from-the-environment")
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    flags = ["--store", "/data/flag.lmdb", "--host", "127.0.0.3", "--port", "4000", "--workers", "2"]
    flags += ["--max-batch", "10", "--max-sample", "20", "--max-concurrent-rpcs", "30", "--grace", "0.5"]
    flags += ["--log-level", "WARNING", "--port-file", str(tmp_path / "port"), "--token-file", str(token_file)]
    assert _cli.main(["serve", *flags]) == 0
    ((config, port_file),) = captured
    assert config == ServerConfig(
        store="/data/flag.lmdb",
        host="127.0.0.3",
        port=4000,
        workers=2,
        max_batch=10,
        max_sample=20,
        max_concurrent_rpcs=30,
        grace_s=0.5,
        log_level="WARNING",
        token="from-the-file",
    )
    assert port_file == tmp_path / "port"


def test_tls_and_token_file_variables(captured, monkeypatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t0ken")
    monkeypatch.setenv("NASBENCH_TLS_CERT", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("NASBENCH_TLS_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("NASBENCH_TOKEN_FILE", str(token_file))
    assert _cli.main(["serve"]) == 0
    ((config, _),) = captured
    assert (config.tls_cert, config.tls_key, config.token) == (tmp_path / "cert.pem", tmp_path / "key.pem", "t0ken")


@pytest.mark.parametrize(
    ("flags", "variable", "insecure"),
    [
        pytest.param([], None, False, id="neither"),
        pytest.param(["--insecure"], None, True, id="flag"),
        pytest.param([], "1", True, id="variable-1"),
        pytest.param([], "true", True, id="variable-true"),
        pytest.param([], "yes", True, id="variable-yes"),
        pytest.param([], "0", False, id="variable-0"),
        pytest.param([], "", False, id="variable-empty"),
    ],
)
def test_insecure_is_explicit(captured, monkeypatch, flags: list[str], variable: str | None, insecure: bool) -> None:
    if variable is not None:
        monkeypatch.setenv("NASBENCH_INSECURE", variable)
    assert _cli.main(["serve", "--host", "0.0.0.0", *flags]) == 0  # app.run is captured: nothing binds
    ((config, _),) = captured
    assert config.insecure is insecure
    if insecure:
        security.check_exposure(config)
    else:
        with pytest.raises(ConfigurationError, match=r"refusing to serve on 0\.0\.0\.0 .* or pass --insecure"):
            security.check_exposure(config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--workers", "0"], "bad --workers 0 or --port 50051", id="workers"),
        pytest.param(["--port", "70000"], "bad --workers 1 or --port 70000", id="port"),
        pytest.param(["--tls-cert", "c.pem"], "TLS needs both --tls-cert and --tls-key", id="half-tls"),
    ],
)
def test_bad_settings(captured, capsys, args: list[str], message: str) -> None:
    assert _cli.main(["serve", *args]) == 2
    assert capsys.readouterr().err == f"nasbench serve: error: {message}\n"
    assert captured == []


def test_empty_token_file(captured, capsys, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    assert _cli.main(["serve", "--token-file", str(tmp_path / "token")]) == 2
    assert f"the token file {tmp_path / 'token'} is empty" in capsys.readouterr().err


def test_health_address_follows_nasbench_port(monkeypatch, capsys) -> None:
    from nasbench_server.process import free_ports

    port = free_ports()[0]
    monkeypatch.setenv("NASBENCH_PORT", str(port))
    assert _cli.main(["health", "--timeout", "0.5"]) == 1  # nothing listens there
    assert capsys.readouterr().out.startswith(f"127.0.0.1:{port}: ")


def test_a_blank_token_is_refused_not_taken_as_protection(captured, monkeypatch, capsys) -> None:
    """NASBENCH_TOKEN of whitespace would look like protection and protect nothing; empty means unset."""
    monkeypatch.setenv("NASBENCH_TOKEN", "  \t ")
    assert _cli.main(["serve", "--host", "0.0.0.0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "nasbench serve: error: NASBENCH_TOKEN is set but blank: set a real token, or unset it"
    )
    monkeypatch.setenv("NASBENCH_TOKEN", "")
    assert _cli.main(["serve"]) == 0 and captured[-1][0].token is None
    assert len(captured) == 1  # the blank token started nothing


TOKEN_RULE = (
    "a token is 1 to 4,096 visible ASCII characters (letters, digits, punctuation; no spaces or control characters)"
)


BAD_TOKENS = [
    ("s\u00e9cret", "character 2 is U+00E9", "non-ascii"),
    ("sec\tret", "character 4 is U+0009", "inner-tab"),
    ("sec\nret", "character 4 is U+000A", "inner-newline"),
    ("sec ret", "character 4 is U+0020", "inner-space"),
    ("x" * 16384, "it has 16,384 characters", "16-kb"),
]


@pytest.mark.parametrize(
    ("source", "token", "problem"),
    [
        pytest.param(source, token, problem, id=f"{source}-{name}")
        for token, problem, name in BAD_TOKENS
        for source in ("file", "variable")
    ]
    + [pytest.param("file", "sec\x00ret", "character 4 is U+0000", id="file-nul")],  # no variable holds NUL
)
def test_tokens_that_metadata_cannot_carry_are_refused_at_start(
    captured, monkeypatch, capsys, tmp_path: Path, source: str, token: str, problem: str
) -> None:
    """gRPC metadata carries visible ASCII only: such a token would start a server whose every call fails
    INTERNAL ('Invalid metadata'). One line names the rule and the offending character, never the token."""
    if source == "file":
        (tmp_path / "token").write_text(token + "\n")
        args, where = ["--token-file", str(tmp_path / "token")], f"the token in {tmp_path / 'token'}"
    else:
        monkeypatch.setenv("NASBENCH_TOKEN", token)
        args, where = [], "NASBENCH_TOKEN"
    assert _cli.main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err == f"nasbench serve: error: {where} is not a valid token: {problem}; {TOKEN_RULE}\n"
    assert "cret" not in err
    assert captured == []


def test_a_token_file_that_is_not_text_is_one_line(captured, capsys, tmp_path: Path) -> None:
    (tmp_path / "token").write_bytes(b"\xff\xfesecret\n")
    assert _cli.main(["serve", "--token-file", str(tmp_path / "token")]) == 2
    assert capsys.readouterr().err == (
        f"nasbench serve: error: the token in {tmp_path / 'token'} is not a valid token: "
        f"byte 1 is 0xff, not text; {TOKEN_RULE}\n"
    )
    assert captured == []


def test_the_longest_token_of_every_visible_character_works_on_the_wire(captured, small_store: Path, tmp_path) -> None:
    """The rule's edge, accepted at start and carried by a real call (so the rule is not stricter than it says
    and not looser than gRPC)."""
    import grpc

    from nasbench.v1 import nasbench_pb2 as pb
    from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
    from tests.inprocess import InProcessServer

    token = ("".join(chr(c) for c in range(0x21, 0x7F)) * 44)[:4096]
    (tmp_path / "token").write_text(token)
    assert _cli.main(["serve", "--token-file", str(tmp_path / "token")]) == 0
    assert captured[0][0].token == token
    with InProcessServer(small_store, token=token) as server, grpc.insecure_channel(server.address) as channel:
        answer = pb_grpc.NasbenchStub(channel).GetInfo(
            pb.GetInfoRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=10
        )
    assert answer.cells > 0
