"""The container, without a Docker engine: the Dockerfile passes hadolint, compose.yaml and the Kubernetes
manifest parse against their schemas, and the image's own install and start steps, replayed in fresh virtual
environments with the Dockerfile's commands, entrypoint and environment, give a healthy server that answers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nasbench import space
from nasbench_server.process import free_ports

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid() -> None:
    from compose_spec import PyCompose

    text = (ROOT / "compose.yaml").read_text()
    compose = PyCompose.from_yaml(text)
    assert set(compose.service_names()) == {"server", "optimizer"}
    data = yaml.safe_load(text)
    server = data["services"]["server"]
    assert server["deploy"]["replicas"] == 3
    assert any(volume.get("read_only") for volume in server["volumes"])
    assert server["healthcheck"]["test"] == ["CMD", "nasbench", "health"]
    assert data["services"]["optimizer"]["depends_on"]["server"]["condition"] == "service_healthy"
    assert data["services"]["optimizer"]["environment"]["NASBENCH_ADDRESS"].startswith("dns:///server:")


def test_kubernetes_manifest() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    kinds = {document["kind"]: document for document in documents}
    assert set(kinds) == {"Deployment", "Service"}
    assert kinds["Service"]["spec"]["clusterIP"] == "None"  # headless: DNS lists every pod
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["volumeMounts"][0]["readOnly"] is True


def dockerfile_runtime_env() -> dict[str, str]:
    """The ENV of the Dockerfile's runtime stage."""
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split("AS runtime", 1)[1]
    block = re.search(r"^ENV ((?:.*\\\n)*.*)$", runtime, re.MULTILINE).group(1)
    return dict(re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")))


def _run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_image_steps_in_fresh_virtualenvs(tmp_path, space_table) -> None:
    """Build stage then runtime stage, as the Dockerfile does them; then the HEALTHCHECK and a query."""
    text = (ROOT / "Dockerfile").read_text()
    assert "RUN sh docker/install.sh wheels /src /wheels" in text
    assert "RUN sh /usr/local/lib/nasbench/install.sh install /wheels" in text
    assert "prepare-store.sh /context" in text
    assert 'ENTRYPOINT ["sh", "/usr/local/lib/nasbench/entrypoint.sh"]' in text
    assert 'CMD ["nasbench", "health"]' in text

    source = tmp_path / "src"  # the build stage's COPY lines
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("client", "builder", "server", "bench", "docker"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))

    def venv(name: str) -> dict[str, str]:
        folder = tmp_path / name
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        return {**os.environ, "PATH": f"{folder / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(folder)}

    build_env = venv("build-stage")
    wheels = tmp_path / "wheels"
    _run(["sh", "docker/install.sh", "wheels", str(source), str(wheels)], build_env, cwd=source)

    runtime_env = venv("runtime-stage")
    _run(["sh", str(source / "docker" / "install.sh"), "install", str(wheels)], runtime_env)
    image_env = dockerfile_runtime_env()
    assert image_env["NASBENCH_HOST"] == "0.0.0.0" and image_env["NASBENCH_PORT"] == "50051"
    port = free_ports()[0]
    cache = tmp_path / "opt" / "cache"
    cache.mkdir(parents=True)
    shutil.copy(space.default_cache_dir() / "space-v1.npz", cache / "space-v1.npz")  # hashing is tested elsewhere
    env = {
        **runtime_env,
        **image_env,
        # the only differences from the image: paths inside this test's folder, and loopback with a free port
        "NASBENCH_CACHE_DIR": str(cache),
        "NASBENCH_MOUNTED_STORE": str(tmp_path / "data" / "store.lmdb"),
        "NASBENCH_BAKED_STORE": str(tmp_path / "opt" / "store.lmdb"),
        "NASBENCH_HOST": "127.0.0.1",
        "NASBENCH_PORT": str(port),
        "NASBENCH_TOKEN": "token-of-the-test",
    }
    _run(["sh", str(source / "docker" / "prepare-store.sh"), str(source)], env)
    server = subprocess.Popen(
        ["sh", str(source / "docker" / "entrypoint.sh")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            health = subprocess.run(["nasbench", "health"], env=env, capture_output=True, text=True)
            if health.returncode == 0:
                break
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, health.stdout
            time.sleep(0.3)
        query = (
            "from nasbench import api; import sys;"
            f"nb = api.NASBench('grpc://127.0.0.1:{port}', token='token-of-the-test', seed=0);"
            "s = api.ModelSpec([[0,1,0],[0,0,1],[0,0,0]], ['input','conv3x3-bn-relu','output']);"
            "print(nb.query(s)['trainable_parameters'], len(nb.hash_iterator()))"
        )
        answer = subprocess.run(["python", "-c", query], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert answer.returncode == 0, answer.stderr
        parameters, cells = answer.stdout.split()
        assert int(parameters) > 0 and int(cells) == 423_624
    finally:
        server.terminate()
        assert server.wait(30) == 0, "SIGTERM drains and exits cleanly"
