"""The container, without a Docker engine: the Dockerfile passes hadolint and is lean and reproducible (no
syntax line, base as a build argument, every package pinned by a complete lock), compose.yaml, the Prometheus
configuration, the Kubernetes manifests and the Grafana dashboard parse and agree on the metrics port, and the
image's own install and start steps, replayed in fresh virtual environments with the Dockerfile's commands,
entrypoint and environment, give a healthy server that answers. (.ci/container-checks.sh builds and runs the
real image with a Docker engine.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from nasbench import space
from nasbench_server.process import free_ports

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _interpolated(text: str) -> str:
    """compose's ${VAR:-default} with the defaults (compose interpolates before it validates)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def test_compose_file_is_valid() -> None:
    from compose_spec import PyCompose

    text = _interpolated((ROOT / "compose.yaml").read_text())
    compose = PyCompose.from_yaml(text)
    assert set(compose.service_names()) == {"store", "server", "optimizer", "prometheus"}
    data = yaml.safe_load(text)
    services = data["services"]
    server = services["server"]
    assert server["deploy"]["replicas"] == 3
    assert all(volume.get("read_only") for volume in server["volumes"]), "the replicas only read the store"
    assert server["healthcheck"]["test"] == ["CMD", "nasbench", "health"]
    assert server["depends_on"]["store"]["condition"] == "service_completed_successfully"
    assert services["store"]["command"] == ["--prepare"]
    cache = {volume["source"] for volume in server["volumes"] if volume["type"] == "volume"}
    assert cache == {v["source"] for v in services["store"]["volumes"] if v["type"] == "volume"} == {"store-cache"}
    assert services["optimizer"]["depends_on"]["server"]["condition"] == "service_healthy"
    assert services["optimizer"]["environment"]["NASBENCH_ADDRESS"].startswith("dns:///server:")
    # Prometheus scrapes every replica on the port the replicas serve metrics on, and loads the alert rules
    metrics_port = int(server["environment"]["NASBENCH_METRICS_PORT"])
    assert metrics_port == int(dockerfile_runtime_env()["NASBENCH_METRICS_PORT"])
    mounts = {v["source"]: v["target"] for v in services["prometheus"]["volumes"]}
    assert mounts["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["dns_sd_configs"] == [{"names": ["server"], "type": "A", "port": metrics_port, "refresh_interval": "5s"}]
    assert config["rule_files"] == [mounts["./deploy/prometheus-alerts.yml"]]
    assert services["prometheus"]["ports"][0]["host_ip"] == "127.0.0.1"


def test_kubernetes_manifests() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    kinds = {document["kind"]: document for document in documents}
    assert set(kinds) == {"Deployment", "Service"}
    assert kinds["Service"]["spec"]["clusterIP"] == "None"  # headless: DNS lists every pod
    template = kinds["Deployment"]["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["volumeMounts"][0]["readOnly"] is True
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    environment = {item["name"]: item.get("value") for item in container["env"]}
    assert ports["metrics"] == int(environment["NASBENCH_METRICS_PORT"]) == 9464
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and int(annotations["prometheus.io/port"]) == ports["metrics"]
    (monitor,) = yaml.safe_load_all((ROOT / "deploy" / "kubernetes-monitoring.yaml").read_text())
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= kinds["Service"]["metadata"]["labels"].items()
    service_ports = {port["name"] for port in kinds["Service"]["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= service_ports


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_grafana_dashboard_covers_the_operators_questions() -> None:
    expressions = "\n".join(dashboard_expressions())
    for needle in (
        "rate(grpc_server_handled_total",  # request rate
        "histogram_quantile(0.5, sum by (le, grpc_method)",  # p50 per method
        "histogram_quantile(0.99, sum by (le, grpc_method)",  # p99 per method
        'grpc_code!="OK"',  # errors by code
        "rate(nasbench_cells_served_total",  # cells/s
        "nasbench_process_resident_memory_bytes",  # memory
        "nasbench_request_memory_bytes",
    ):
        assert needle in expressions, needle


def test_dockerfile_is_lean_and_reproducible() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE), "a syntax line pulls a frontend image"
    first_from = text.index("\nFROM ")
    assert re.search(r"^ARG PYTHON_IMAGE=\S+", text[:first_from], re.MULTILINE), "the base is a build argument"
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/nasbench/venv /opt/nasbench/venv" in runtime
    assert "rm " not in runtime and "wheels" not in runtime, "nothing copied in is deleted by a later layer"
    assert re.search(r"^ARG BAKE_STORE=none$", runtime, re.MULTILINE), "the lean image is the default"


def _runtime_dependencies() -> set[str]:
    """Names of every distribution nasbench-server[server,builder] needs at run time, transitively."""
    todo, seen = [("nasbench-server", ("server", "builder"))], set()
    while todo:
        name, extras = todo.pop()
        for text in distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in (*extras, "")):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in seen and dependency != "nasbench-server":
                seen.add(dependency)
                todo.append((dependency, tuple(requirement.extras)))
    return seen


def test_lock_pins_every_runtime_dependency() -> None:
    lines = [line for line in (ROOT / "docker" / "requirements.lock").read_text().splitlines() if line[:1].isalnum()]
    pins = dict(line.split("==") for line in lines)
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.]*", version) for version in pins.values()), pins
    assert {canonicalize_name(name) for name in pins} == _runtime_dependencies()
    script = (ROOT / "docker" / "install.sh").read_text()
    assert "--no-deps" in script and "pip_in_venv check" in script


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
    """The build stage's install into a fresh virtual environment, as the Dockerfile does it; then the lean
    image's first start (no store baked or mounted: the synthetic one is built), the HEALTHCHECK, a query and
    the metrics endpoint."""
    text = (ROOT / "Dockerfile").read_text()
    assert "RUN sh docker/install.sh /src /opt/nasbench/venv" in text
    assert "prepare-store.sh /context" in text
    assert 'ENTRYPOINT ["sh", "/usr/local/lib/nasbench/entrypoint.sh"]' in text
    assert 'CMD ["nasbench", "health"]' in text

    source = tmp_path / "src"  # the build stage's COPY lines
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("client", "builder", "server", "docker"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))

    build_stage = tmp_path / "build-stage"
    subprocess.run([sys.executable, "-m", "venv", str(build_stage)], check=True)
    build_env = {**os.environ, "PATH": f"{build_stage / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(build_stage)}
    image_venv = tmp_path / "opt" / "venv"
    _run(["sh", "docker/install.sh", str(source), str(image_venv)], build_env, cwd=source)
    installed = {path.name.split("-")[0].lower() for path in image_venv.glob("lib/python*/site-packages/*.dist-info")}
    assert {"pip", "setuptools"}.isdisjoint(installed) and {"numpy", "grpcio", "prometheus_client"} <= installed
    assert not list(image_venv.glob("lib/python*/site-packages/numpy/*/tests")), "numpy's test suites removed"

    image_env = dockerfile_runtime_env()
    assert image_env["NASBENCH_HOST"] == "0.0.0.0" and image_env["NASBENCH_PORT"] == "50051"
    assert image_env["PATH"].startswith("/opt/nasbench/venv/bin:")
    port, metrics_port = free_ports(2)
    cache = tmp_path / "opt" / "cache"
    cache.mkdir(parents=True)
    shutil.copy(space.default_cache_dir() / "space-v1.npz", cache / "space-v1.npz")  # hashing is tested elsewhere
    env = {
        **os.environ,
        **image_env,
        # the only differences from the image: paths inside this test's folder, and loopback with free ports
        "PATH": f"{image_venv / 'bin'}:{os.environ['PATH']}",
        "NASBENCH_CACHE_DIR": str(cache),
        "NASBENCH_MOUNTED_STORE": str(tmp_path / "data" / "store.lmdb"),
        "NASBENCH_BAKED_STORE": str(tmp_path / "opt" / "store.lmdb"),
        "NASBENCH_HOST": "127.0.0.1",
        "NASBENCH_PORT": str(port),
        "NASBENCH_METRICS_PORT": str(metrics_port),
        "NASBENCH_TOKEN": "token-of-the-test",
    }
    env.pop("VIRTUAL_ENV", None)
    _run(["sh", str(source / "docker" / "prepare-store.sh"), str(source)], env)  # BAKE_STORE=none: nothing
    assert not (tmp_path / "opt" / "store.lmdb").exists() and not (cache / "stores").exists()
    server = subprocess.Popen(
        ["sh", str(source / "docker" / "entrypoint.sh")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 400  # the first start builds the synthetic store (about a minute)
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
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            exposed = response.read().decode()
        handled = [line for line in exposed.splitlines() if line.startswith("grpc_server_handled_total{")]
        assert any('grpc_method="GetMetrics"' in line and 'grpc_code="OK"' in line for line in handled), handled
        assert re.search(r'nasbench_store_info\{[^}]*synthetic="true"[^}]*\} 1\.0', exposed)
    finally:
        server.terminate()
        assert server.wait(30) == 0, "SIGTERM drains and exits cleanly"
