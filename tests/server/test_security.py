"""Tokens, TLS, and the rule that a server beyond loopback needs one of them (or an explicit --insecure)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nasbench import aio, api
from nasbench.errors import ConfigurationError, NotAuthorizedError, ServiceUnavailableError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.config import ServerConfig
from nasbench_server.process import ServerProcess
from nasbench_server.security import TOKEN_RULE, TokenInterceptor, check_exposure, is_loopback
from tests.client.scenarios import INCEPTION, spec
from tests.inprocess import served

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, small_store):
    """A server started with --token-file (a file holding the token and a newline)."""
    with served(small_store, tmp_path_factory.mktemp("token"), token=TOKEN) as server:
        yield server


def test_token_is_required(token_server) -> None:
    address = f"grpc://{token_server.address}"
    for token in (None, "wrong"):
        with pytest.raises(NotAuthorizedError, match="missing or wrong token") as info:
            api.NASBench(address, token=token)
        assert isinstance(info.value, PermissionError) and token_server.address in str(info.value)
    nasbench = api.NASBench(address, token=TOKEN, seed=0)
    chain = spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    assert nasbench.query(chain)["trainable_parameters"] > 0
    assert len(list(nasbench.hash_iterator())) == 2532


def test_the_asyncio_client_sends_the_token(token_server) -> None:
    """``AsyncNASBench.connect`` passes ``token=`` on as ``api.NASBench`` does: refused without it, served with it."""
    address = f"grpc://{token_server.address}"

    async def cells(token: str | None) -> int:
        async with await aio.AsyncNASBench.connect(address, token=token) as nasbench:
            return len(nasbench)

    with pytest.raises(NotAuthorizedError, match="missing or wrong token"):
        asyncio.run(cells(None))
    assert asyncio.run(cells(TOKEN)) == 2532


def test_a_whole_stream_is_collected_with_the_token_and_refused_without_it(token_server) -> None:
    """``collect`` (ListCells, read whole) from the sync and the asyncio transport sends the token; without it
    the refusal names the server; each call is counted for its target and method with the code it ended with."""
    from nasbench._backends.transport import STATS, AsyncTransport, Transport, grpc_target

    address = f"grpc://{token_server.address}"
    request = pb.ListCellsRequest(chunk_size=1000)

    def calls() -> dict[str, int]:
        found = STATS.snapshot()[0].items()
        return {
            code: n for (target, method, code), n in found if (target, method) == (grpc_target(address), "ListCells")
        }

    async def collect(token: str | None) -> list:
        transport = AsyncTransport(address, token=token)
        try:
            return await transport.collect("ListCells", request)
        finally:
            await transport.close()

    before = calls()
    for chunks in (Transport(address, token=TOKEN).collect("ListCells", request), asyncio.run(collect(TOKEN))):
        assert sum(len(chunk.hashes) for chunk in chunks) == 2532 * 16
    for refused in (lambda: Transport(address).collect("ListCells", request), lambda: asyncio.run(collect(None))):
        with pytest.raises(NotAuthorizedError, match=f"{address} refused the call: missing or wrong token"):
            refused()
    after = calls()
    assert after.pop("OK") == before.pop("OK", 0) + 2
    assert sum(after.values()) == sum(before.values()) + 2, "the refusals, under their status code"


def test_every_method_is_guarded_but_health(token_server) -> None:
    with grpc.insecure_channel(token_server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        for call in (
            lambda: stub.Ping(pb.PingRequest()),
            lambda: list(stub.ListCells(pb.ListCellsRequest())),
            lambda: list(stub.QueryStream(iter([pb.QueryRequest()]))),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.Ping(pb.PingRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),)) == pb.PingResponse()
    health = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "health", "--address", token_server.address],
        capture_output=True,
        text=True,
    )
    assert health.returncode == 0 and "SERVING" in health.stdout


def _usage(**allowed: bool) -> x509.KeyUsage:
    """A key usage extension allowing only ``allowed``."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    return x509.KeyUsage(**{name: allowed.get(name, False) for name in names})


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files, with the extensions RFC 5280
    asks for (key identifiers, key usage), which Python 3.13's default TLS context requires
    (``VERIFY_X509_STRICT``)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nasbench test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_tls(small_store, tmp_path) -> None:
    ca, cert, key = _certificates(tmp_path)
    server = ServerProcess(small_store, tmp_path, extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        deadline_log = server.log
        port = None
        import time

        started = time.monotonic()
        while not server.port_file.exists():
            assert time.monotonic() - started < 60 and server.process.poll() is None, deadline_log.read_text()
            time.sleep(0.05)
        port = int(server.port_file.read_text())
        health = subprocess.run(
            [sys.executable, "-m", "nasbench._cli", "health", "--address", f"127.0.0.1:{port}", "--tls-ca", str(ca)],
            capture_output=True,
            text=True,
        )
        for _ in range(100):
            if health.returncode == 0:
                break
            time.sleep(0.1)
            health = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "nasbench._cli",
                    "health",
                    "--address",
                    f"127.0.0.1:{port}",
                    "--tls-ca",
                    str(ca),
                ],
                capture_output=True,
                text=True,
            )
        assert health.returncode == 0, health.stdout
        nasbench = api.NASBench(f"grpcs://127.0.0.1:{port}", tls_ca=ca, seed=0)
        chain = spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"])
        assert nasbench.query(chain)["trainable_parameters"] > 0
        with pytest.raises(ServiceUnavailableError):
            api.NASBench(f"grpc://127.0.0.1:{port}", timeout=2)  # plaintext against TLS never connects
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("unix:/tmp/s", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("::", False),
        ("nasbench.example", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_an_interceptor_with_a_token_metadata_cannot_carry_is_refused_naming_it() -> None:
    """However the server is made (not only through the CLI's checks), its token is checked, and the error says
    which token it is and the rule, never the token itself."""
    with pytest.raises(ConfigurationError) as info:
        TokenInterceptor("secret with space")
    assert str(info.value) == f"the server token is not a valid token: character 7 is U+0020; {TOKEN_RULE}"


def test_exposure_needs_protection(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match=r"refusing to serve on 0\.0\.0\.0"):
        check_exposure(ServerConfig(host="0.0.0.0"))
    check_exposure(ServerConfig(host="0.0.0.0", token="t"))
    check_exposure(ServerConfig(host="0.0.0.0", insecure=True))
    check_exposure(ServerConfig(host="0.0.0.0", tls_cert=tmp_path / "c", tls_key=tmp_path / "k"))
    check_exposure(ServerConfig(host="127.0.0.1"))
    refused = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "refusing to serve on 0.0.0.0" in refused.stderr


def test_inception_through_token_and_cache(token_server) -> None:
    nasbench = api.NASBench(f"grpc://{token_server.address}", token=TOKEN)
    with pytest.raises(KeyError):  # a 7-vertex cell is not in the 5-vertex store: the original's KeyError
        nasbench.query(spec(*INCEPTION))


def test_server_credentials_need_both_files(tmp_path) -> None:
    from nasbench_server.security import server_credentials

    _, cert, key = _certificates(tmp_path)
    assert isinstance(server_credentials(ServerConfig(tls_cert=cert, tls_key=key)), grpc.ServerCredentials)
    assert server_credentials(ServerConfig(tls_cert=cert)) is None
    assert server_credentials(ServerConfig(tls_key=key)) is None
    assert server_credentials(ServerConfig()) is None
    with pytest.raises(FileNotFoundError):
        server_credentials(ServerConfig(tls_cert=cert, tls_key=tmp_path / "absent.key"))


def test_every_kind_of_method_is_refused_without_the_token(token_server) -> None:
    """Unary, server-streaming, client-streaming... each refusal has the kind of the method it guards."""
    with grpc.insecure_channel(token_server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        for metadata in (None, (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
            for call in (
                lambda metadata=metadata: stub.GetInfo(pb.GetInfoRequest(), metadata=metadata),
                lambda metadata=metadata: next(stub.ListCells(pb.ListCellsRequest(), metadata=metadata)),
                lambda metadata=metadata: next(stub.QueryStream(iter([pb.QueryRequest()]), metadata=metadata)),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    call()
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert info.value.details() == (
                    "missing or wrong token: send the metadata 'authorization: Bearer <token>'"
                )
        good = (("authorization", f"Bearer {TOKEN}"),)
        assert stub.GetInfo(pb.GetInfoRequest(), metadata=good).cells == 2532
        assert len(next(stub.ListCells(pb.ListCellsRequest(chunk_size=3), metadata=good)).hashes) == 48


@pytest.mark.parametrize(
    "make",
    [
        grpc.unary_unary_rpc_method_handler,
        grpc.unary_stream_rpc_method_handler,
        grpc.stream_unary_rpc_method_handler,
        grpc.stream_stream_rpc_method_handler,
    ],
)
def test_a_refusal_reads_nothing_of_the_call_whatever_its_kind(make) -> None:
    """Every refusal is request-streaming, so gRPC hands it the call without reading (or buffering up to the
    message limit) an unauthenticated request; the refused calls of every kind end UNAUTHENTICATED (above)."""
    import asyncio
    from types import SimpleNamespace

    from nasbench_server.security import TokenInterceptor

    async def continuation(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return make(lambda request, context: None, request_deserializer=bytes)

    details = SimpleNamespace(
        method="/nasbench.v1.Nasbench/Query", invocation_metadata=(("authorization", "Bearer x"),)
    )
    refusal = asyncio.run(TokenInterceptor("t").intercept_service(continuation, details))
    assert refusal.request_streaming and refusal.request_deserializer is None


def test_exposure_needs_both_tls_files_and_names_every_way_out(tmp_path) -> None:
    """A certificate without its key (or the reverse) is no protection; the refusal names all three ways out."""
    expected = (
        "refusing to serve on 10.1.2.3 (beyond loopback) without protection: give a token "
        "(--token-file or NASBENCH_TOKEN), TLS (--tls-cert and --tls-key), or pass --insecure explicitly"
    )
    for config in (
        ServerConfig(host="10.1.2.3", tls_cert=tmp_path / "c"),
        ServerConfig(host="10.1.2.3", tls_key=tmp_path / "k"),
        ServerConfig(host="10.1.2.3", token=""),
        ServerConfig(host="10.1.2.3"),
    ):
        with pytest.raises(ConfigurationError) as info:
            check_exposure(config)
        assert str(info.value) == expected


def test_an_unknown_method_is_unimplemented_with_or_without_the_token(token_server) -> None:
    """The interceptor refuses calls to methods the server has; a method it lacks is gRPC's UNIMPLEMENTED (the
    refusal is not put in place of a missing handler)."""
    with grpc.insecure_channel(token_server.address) as channel:
        call = channel.unary_unary("/nasbench.v1.Nasbench/NoSuchMethod")
        for metadata in (None, (("authorization", f"Bearer {TOKEN}"),)):
            with pytest.raises(grpc.RpcError) as info:
                call(b"", metadata=metadata, timeout=10)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
