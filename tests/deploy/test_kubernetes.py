"""The Kubernetes manifests (deploy/k8s): they render, validate, and run the app safely.

Each kustomization (the base and the production overlay) is rendered once with
`kubectl kustomize`; the built-in kinds are validated strictly against the
Kubernetes API schemas shipped with kubernetes-validate, and the rendered
objects are then checked for what the pipeline needs: hardened pods, probes on
the right ports, selectors that match, autoscalers and budgets that target real
objects, settings that exist, a worker that may finish its drain, and a
kafka-exporter (consumer lag) that watches the app's brokers and is scraped.
"""

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from persona_infra.settings import Settings
from tests.deploy.common import ROOT, tool

K8S = ROOT / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
SECRET_TEMPLATE = K8S / "base" / "secret.example.yaml"
COMPOSE_TOPICS_SCRIPT = ROOT / "deploy" / "compose" / "create-topics.sh"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_KUBERNETES = ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml"

# Oldest Kubernetes minor the manifests must work on; kubernetes-validate ships
# its schemas, so validation needs no network.
KUBERNETES_VERSION = "1.31"
# Custom resources kubernetes-validate has no schema for. They are left out of
# the schema validation on purpose and checked by hand (test_scaled_object);
# any other kind without a schema fails test_builtin_kinds_validate_strictly.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}

APP_NAME_LABEL = ("app.kubernetes.io/name", "persona-pipeline")
CONSUMER_GROUP = "persona-generators"
SHARD_CONSUMER_GROUP = "persona-shard-generators"
REQUESTS_TOPIC = "persona.requests"
SHARDS_TOPIC = "persona.shards"
EXPORTER = "kafka-exporter"  # component label, compose service and Prometheus job
EXPORTER_PORT = 9308
MONITORING_ONLY = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
]
Mi = 2**20
# Memory limit range per component (app.kubernetes.io/component of the pod). The
# api and the worker: the 512 Mi the alerts and persona_memory_limit_bytes are
# tuned for; the exporter is a small Go process.
MEMORY_LIMITS = {
    "api": (256 * Mi, 512 * Mi),
    "worker": (256 * Mi, 512 * Mi),
    "create-topics": (256 * Mi, 512 * Mi),
    EXPORTER: (32 * Mi, 128 * Mi),
}
# Pod runAsUser/runAsGroup/fsGroup per component (None: not required). The app
# image and apache/kafka run as UID 1000; kafka-exporter's image declares no
# user, so its pod runs as nobody.
POD_IDS: dict[str, tuple[int, int, int | None]] = {EXPORTER: (65534, 65534, None)}
DEFAULT_POD_IDS = (1000, 1000, 1000)
# Environment variables the app reads that are not fields of Settings.
EXTRA_APP_ENV = {"SECRETS_DIR"}
EXTRA_APP_ENV_PREFIXES = ("OTEL_",)

Doc = dict[str, Any]


# ---------------------------------------------------------------------------
# Rendering and lookups
# ---------------------------------------------------------------------------


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render deploy/k8s with `kubectl kustomize`")
    return kubectl


@functools.cache
def _render_text(target: str) -> str:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(TARGETS[target])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"`kubectl kustomize deploy/k8s/{TARGETS[target].relative_to(K8S)}` failed; "
        f"fix the kustomization:\n{result.stderr}"
    )
    return result.stdout


def render(target: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(_render_text(target)) if doc]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name!r}, found {len(found)}"
    return found[0]


def component(docs: list[Doc], name: str) -> Doc:
    """The Deployment whose pods carry app.kubernetes.io/component=<name>."""
    found = [
        doc
        for doc in of_kind(docs, "Deployment")
        if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == name
    ]
    assert len(found) == 1, f"expected one Deployment with component {name!r}, found {len(found)}"
    return found[0]


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    """Every object with a pod template."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield doc
        elif doc["kind"] == "CronJob":
            yield {**doc, "spec": doc["spec"]["jobTemplate"]["spec"]}


def all_containers(pod: Doc) -> list[Doc]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def app_container(deployment: Doc) -> Doc:
    containers: list[Doc] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: expected one container"
    return containers[0]


def config(docs: list[Doc], deployment: Doc) -> dict[str, str]:
    """The ConfigMap data the Deployment's container reads through envFrom."""
    refs = [
        source["configMapRef"]["name"]
        for source in app_container(deployment).get("envFrom", [])
        if "configMapRef" in source
    ]
    assert len(refs) == 1, f"{deployment['metadata']['name']}: expected one envFrom configMapRef"
    return dict(named(docs, "ConfigMap", refs[0]).get("data", {}))


def port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers: list[int] = [
        p["containerPort"] for p in container.get("ports", []) if p.get("name") == port
    ]
    assert numbers, f"container {container['name']} has no port named {port!r}"
    return numbers[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); {} selects every pod."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(operator)
        assert ok is not None, f"unknown matchExpressions operator {operator!r}"
        if not ok:
            return False
    return True


def pod_component(workload: Doc) -> str:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    name = labels.get("app.kubernetes.io/component")
    assert name, f"{workload['metadata']['name']}: pods without app.kubernetes.io/component"
    return str(name)


_QUANTITY = re.compile(r"^([0-9.]+)([KMGT]i?|k|)$")
_FACTORS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_FACTORS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _default(field: str) -> Any:
    return Settings.model_fields[field].default


def memory_bytes(quantity: str | int) -> float:
    match = _QUANTITY.match(str(quantity))
    assert match, f"unsupported memory quantity {quantity!r}; write it like 512Mi"
    return float(match.group(1)) * _FACTORS[match.group(2)]


@pytest.fixture(params=sorted(TARGETS))
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    return render(request.param)


# ---------------------------------------------------------------------------
# Render and schema validation
# ---------------------------------------------------------------------------


def _kubernetes_validate() -> str:
    return tool("kubernetes-validate")


def _validate(files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _kubernetes_validate(),
            "--strict",
            "--kubernetes-version",
            KUBERNETES_VERSION,
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kustomizations_render(target: str) -> None:
    kinds = {doc["kind"] for doc in render(target)}
    expected = {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler"}
    assert expected <= kinds, f"deploy/k8s {target} renders no {sorted(expected - kinds)}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_builtin_kinds_validate_strictly(target: str, tmp_path: Path) -> None:
    """Strict schema validation; a built-in kind without a schema is a failure too.

    kubernetes-validate only prints a WARN line (exit status 0) for a kind it
    has no schema for, so the known custom resources are left out of its input
    and every remaining object must be reported as passed.
    """
    docs = render(target)
    builtin = [doc for doc in docs if (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS]
    manifest = tmp_path / f"{target}.yaml"
    manifest.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    result = _validate([manifest])
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if not line.startswith(("INFO", "WARN"))]
    assert result.returncode == 0, f"deploy/k8s {target} does not validate:\n" + "\n".join(errors)
    missing = [line for line in output.splitlines() if not line.startswith("INFO")]
    assert not missing, (
        f"deploy/k8s {target}: objects without a schema for Kubernetes {KUBERNETES_VERSION} "
        f"(use a served apiVersion, or add a custom resource to CUSTOM_KINDS and check it by "
        f"hand):\n" + "\n".join(missing)
    )
    passed = [line for line in output.splitlines() if " passed for resource " in line]
    assert len(passed) == len(builtin), f"not every object was validated:\n{output}"


def test_kubernetes_validate_reports_missing_schemas_as_warnings(tmp_path: Path) -> None:
    """Guards the assumption above: a kind without a schema gives WARN, not an error."""
    manifest = tmp_path / "custom.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}}
        )
    )
    result = _validate([manifest])
    assert result.returncode == 0
    assert "WARN" in result.stdout
    assert "Couldn't find schema for kind ScaledObject" in result.stdout


def test_only_known_custom_resources(docs: list[Doc]) -> None:
    def is_builtin(api_version: str) -> bool:
        group = api_version.rpartition("/")[0]
        return "." not in group or group.endswith(".k8s.io")

    custom = {(doc["apiVersion"], doc["kind"]) for doc in docs if not is_builtin(doc["apiVersion"])}
    assert custom <= CUSTOM_KINDS, f"custom resources without a hand-written check: {custom}"


def test_every_object_carries_the_app_label(docs: list[Doc]) -> None:
    key, value = APP_NAME_LABEL
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.get(key) == value, f"{doc['kind']}/{doc['metadata']['name']}: no {key}"


# ---------------------------------------------------------------------------
# KEDA ScaledObject (no schema: checked here)
# ---------------------------------------------------------------------------


def test_scaled_object(docs: list[Doc]) -> None:
    scaled = of_kind(docs, "ScaledObject")
    assert len(scaled) == 1, "expected one KEDA ScaledObject (for the worker)"
    obj = scaled[0]
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    spec = obj["spec"]
    worker = component(docs, "worker")
    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    assert target["name"] == worker["metadata"]["name"], "ScaledObject must target the worker"
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replicas: drop spec.replicas"

    settings = config(docs, worker)
    shard_partitions = int(
        settings.get("KAFKA_SHARD_PARTITIONS", _default("kafka_shard_partitions"))
    )
    minimum, maximum = spec.get("minReplicaCount", 0), spec["maxReplicaCount"]
    assert 1 <= minimum <= maximum <= shard_partitions, (
        f"ScaledObject replicas {minimum}..{maximum}: the maximum must not exceed "
        f"KAFKA_SHARD_PARTITIONS={shard_partitions} (workers past it get no shard) and the "
        "minimum must be >= 1"
    )

    kafka = {t["metadata"]["topic"]: t for t in spec["triggers"] if t["type"] == "kafka"}
    prefix = settings.get("KAFKA_TOPIC_PREFIX", "")
    groups = {
        prefix + REQUESTS_TOPIC: prefix + CONSUMER_GROUP,
        prefix + SHARDS_TOPIC: prefix + SHARD_CONSUMER_GROUP,
    }
    assert set(kafka) == set(groups), "expected a kafka trigger on the requests and the shards"
    for topic, trigger in kafka.items():
        metadata = trigger["metadata"]
        assert all(isinstance(value, str) for value in metadata.values()), (
            "KEDA trigger metadata values must be strings (quote numbers and booleans)"
        )
        assert metadata["consumerGroup"] == groups[topic]
        assert metadata["bootstrapServers"] == settings["KAFKA_BOOTSTRAP_SERVERS"], (
            "a kafka trigger's bootstrapServers must equal KAFKA_BOOTSTRAP_SERVERS of the ConfigMap"
        )
        assert int(metadata["lagThreshold"]) > 0
    # Past the requests' partitions, workers take only shards: their trigger may idle them.
    requests_trigger = kafka[prefix + REQUESTS_TOPIC]["metadata"]
    assert requests_trigger.get("allowIdleConsumers") == "true"
    assert kafka[prefix + SHARDS_TOPIC]["metadata"].get("allowIdleConsumers", "false") == "false"


# ---------------------------------------------------------------------------
# Pods
# ---------------------------------------------------------------------------


def test_pods_are_hardened(docs: list[Doc]) -> None:
    found = list(workloads(docs))
    assert found, "no workloads rendered"
    for workload in found:
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        context = pod.get("securityContext", {})
        user, group, fs_group = POD_IDS.get(pod_component(workload), DEFAULT_POD_IDS)
        assert context.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot must be true"
        assert context.get("runAsUser") == user, f"{name}: runAsUser {user}"
        assert context.get("runAsGroup") == group, f"{name}: runAsGroup {group}"
        if fs_group is not None:
            assert context.get("fsGroup") == fs_group, f"{name}: fsGroup {fs_group}"
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, f"{name}: mounts an API token"
        assert not pod.get("hostNetwork"), f"{name}: hostNetwork"
        assert not pod.get("hostPID"), f"{name}: hostPID"
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in all_containers(pod):
            where = f"{name} container {container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert sc.get("privileged", False) is False, f"{where}: privileged"
            assert sc.get("runAsNonRoot", True) is True, f"{where}: runAsNonRoot"
            assert sc.get("runAsUser", 1000) != 0, f"{where}: runs as root"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL"
            assert not sc.get("capabilities", {}).get("add"), f"{where}: adds capabilities"
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: mount an emptyDir at /tmp"


def test_resources_fit_the_memory_budget(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        name = pod_component(workload)
        assert name in MEMORY_LIMITS, f"component {name}: add its memory range to MEMORY_LIMITS"
        low, high = MEMORY_LIMITS[name]
        for container in all_containers(workload["spec"]["template"]["spec"]):
            where = f"{workload['metadata']['name']} container {container['name']}"
            resources = container.get("resources", {})
            limit = resources.get("limits", {}).get("memory")
            request = resources.get("requests", {}).get("memory")
            assert limit, f"{where}: set a memory limit"
            assert request, f"{where}: set a memory request"
            assert low <= memory_bytes(limit) <= high, (
                f"{where}: memory limit {limit} must be within {low // Mi}Mi..{high // Mi}Mi"
            )
            assert memory_bytes(request) <= memory_bytes(limit), f"{where}: request > limit"
            assert resources.get("requests", {}).get("cpu"), f"{where}: set a cpu request"


@pytest.mark.parametrize(
    ("name", "subcommand", "port_setting"),
    [("api", "api", "API_PORT"), ("worker", "worker", "WORKER_PORT")],
)
def test_processes_probes_and_ports(
    docs: list[Doc], name: str, subcommand: str, port_setting: str
) -> None:
    deployment = component(docs, name)
    container = app_container(deployment)
    settings = config(docs, deployment)
    expected = int(settings.get(port_setting, _default(port_setting.lower())))
    assert expected == {"api": 8080, "worker": 8081}[name]
    assert [*container.get("command", []), *container.get("args", [])][-1:] == [subcommand], (
        f"{name}: the container must run `persona {subcommand}` (args: [{subcommand}])"
    )
    host_setting = port_setting.replace("PORT", "HOST")
    assert settings.get(host_setting) == "0.0.0.0", f"set {host_setting}=0.0.0.0 in the ConfigMap"

    paths = {"livenessProbe": "/health", "readinessProbe": "/ready", "startupProbe": "/health"}
    for probe_name, path in paths.items():
        probe = container.get(probe_name)
        if probe is None and probe_name == "startupProbe":
            continue
        assert probe, f"{name}: missing {probe_name}"
        assert probe["httpGet"]["path"] == path, f"{name}: {probe_name} must GET {path}"
        port = port_number(container, probe["httpGet"]["port"])
        assert port == expected, f"{name}: {probe_name} on port {port}, the process on {expected}"

    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true", f"{name}: prometheus.io/scrape"
    assert annotations.get("prometheus.io/port") == str(expected), f"{name}: prometheus.io/port"
    assert annotations.get("prometheus.io/path") == "/metrics", f"{name}: prometheus.io/path"


def test_worker_may_finish_its_drain(docs: list[Doc]) -> None:
    worker = component(docs, "worker")
    settings = config(docs, worker)
    grace = float(settings.get("SHUTDOWN_GRACE_S", _default("shutdown_grace_s")))
    termination = worker["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    assert termination > grace, (
        f"worker terminationGracePeriodSeconds ({termination}) must exceed SHUTDOWN_GRACE_S "
        f"({grace}), or the kubelet kills the worker while it drains"
    )


# ---------------------------------------------------------------------------
# Settings: every variable exists, and the ConfigMap is a valid configuration
# ---------------------------------------------------------------------------


def _is_setting(name: str) -> bool:
    return (
        name.lower() in Settings.model_fields
        or name in EXTRA_APP_ENV
        or name.startswith(EXTRA_APP_ENV_PREFIXES)
    )


def test_environment_names_are_settings(docs: list[Doc]) -> None:
    for name in ("api", "worker"):
        deployment = component(docs, name)
        container = app_container(deployment)
        names = [env["name"] for env in container.get("env", [])] + list(config(docs, deployment))
        unknown = sorted(n for n in names if not _is_setting(n))
        assert not unknown, (
            f"{name}: variables that are no setting of persona_infra.settings.Settings "
            f"(typo, or a setting missing from the app): {unknown}"
        )
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] == env["name"], f"{name}: {env['name']} reads key {ref['key']}"


def test_config_map_is_a_valid_production_configuration(docs: list[Doc]) -> None:
    for name in ("api", "worker"):
        values = config(docs, component(docs, name))
        assert values.get("ENVIRONMENT") == "production"
        assert values.get("KAFKA_CREATE_TOPICS") == "false", "topics are created by the Job"
        # model_validate checks the values alone: no environment, .env or secrets directory.
        settings = Settings.model_validate(
            {key.lower(): value for key, value in values.items()}
            | {"cursor_secret": "a-random-value-from-the-secret-of-32-chars"}
        )
        assert settings.environment == "production"


def test_secret_template_holds_no_values() -> None:
    result = _validate([SECRET_TEMPLATE])
    assert result.returncode == 0, result.stdout
    assert "WARN" not in result.stdout, result.stdout
    secret = yaml.safe_load(SECRET_TEMPLATE.read_text())
    assert secret["kind"] == "Secret"
    values = {**secret.get("data", {}), **secret.get("stringData", {})}
    filled = sorted(key for key, value in values.items() if value not in ("", None))
    assert not filled, f"{SECRET_TEMPLATE.name} must hold placeholders only; filled: {filled}"
    unknown = sorted(key for key in values if not _is_setting(key))
    assert not unknown, f"{SECRET_TEMPLATE.name}: keys that are no setting: {unknown}"


def test_secret_references(docs: list[Doc]) -> None:
    template = yaml.safe_load(SECRET_TEMPLATE.read_text())
    documented = set(template.get("stringData", {})) | {"MONGODB_URI"}  # commented-out key
    for secret in of_kind(docs, "Secret"):  # a rendered Secret must not carry values either
        values = {**secret.get("data", {}), **secret.get("stringData", {})}
        assert not any(values.values()), f"Secret {secret['metadata']['name']} has real values"
    for name in ("api", "worker"):
        for env in app_container(component(docs, name)).get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if not ref:
                continue
            assert ref["name"] == template["metadata"]["name"]
            assert ref["key"] in documented, f"{ref['key']} is not in {SECRET_TEMPLATE.name}"
            required = not ref.get("optional", False)
            assert required == (ref["key"] == "CURSOR_SECRET"), (
                f"{name}: only CURSOR_SECRET is required; {ref['key']} must be optional: true"
            )


# ---------------------------------------------------------------------------
# Services, autoscalers, budgets, network policies
# ---------------------------------------------------------------------------


def test_services_select_their_pods(docs: list[Doc]) -> None:
    expected = {
        "api": ("http", 80, 8080),
        "worker": ("metrics", 8081, 8081),
        EXPORTER: ("metrics", EXPORTER_PORT, EXPORTER_PORT),
    }
    services = of_kind(docs, "Service")
    assert len(services) == len(expected)
    for name, (port_name, port, container_port) in expected.items():
        deployment = component(docs, name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selecting = [s for s in services if matches(s["spec"].get("selector", {}), labels)]
        assert len(selecting) == 1, f"expected one Service selecting the {name} pods"
        service = selecting[0]
        for other in of_kind(docs, "Deployment"):
            if other is not deployment:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not matches(service["spec"]["selector"], other_labels)
        ports = service["spec"]["ports"]
        assert [(p["name"], p["port"]) for p in ports] == [(port_name, port)], name
        target = port_number(app_container(deployment), ports[0]["targetPort"])
        assert target == container_port, f"{name} Service targets {target}"


def test_deployment_selectors_match_templates(docs: list[Doc]) -> None:
    for deployment in of_kind(docs, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
        assert selector.get(APP_NAME_LABEL[0]) == APP_NAME_LABEL[1]


def test_autoscaler_targets_the_api(docs: list[Doc]) -> None:
    autoscalers = of_kind(docs, "HorizontalPodAutoscaler")
    assert len(autoscalers) == 1, "expected one HPA (the api's; KEDA makes the worker's)"
    hpa = autoscalers[0]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    api = component(docs, "api")
    assert (target["kind"], target["name"]) == ("Deployment", api["metadata"]["name"])
    assert "replicas" not in api["spec"], "the HPA owns the api's replicas: drop spec.replicas"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    cpu = [m for m in hpa["spec"]["metrics"] if m.get("resource", {}).get("name") == "cpu"]
    assert cpu, "the api HPA must scale on CPU"
    assert cpu[0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_disruption_budgets_select_pods(docs: list[Doc]) -> None:
    budgets = of_kind(docs, "PodDisruptionBudget")
    for name in ("api", "worker"):
        labels = component(docs, name)["spec"]["template"]["metadata"]["labels"]
        selecting = [b for b in budgets if matches(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(selecting) == 1, f"expected one PodDisruptionBudget for the {name} pods"
        assert selecting[0]["apiVersion"] == "policy/v1"
    api_labels = component(docs, "api")["spec"]["template"]["metadata"]["labels"]
    api_budget = next(
        b for b in budgets if matches(b["spec"]["selector"]["matchLabels"], api_labels)
    )
    assert api_budget["spec"].get("minAvailable") == 1


def _policies_for(docs: list[Doc], labels: dict[str, str], policy_type: str) -> list[Doc]:
    return [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if policy_type in p["spec"].get("policyTypes", [])
        and selects(p["spec"]["podSelector"], labels)
    ]


def _ingress_rules(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [
        rule
        for policy in _policies_for(docs, labels, "Ingress")
        for rule in policy["spec"].get("ingress", [])
    ]


def _allowed_ports(policies: list[Doc], direction: str) -> set[tuple[str, int]]:
    return {
        (port.get("protocol", "TCP"), port["port"])
        for policy in policies
        for rule in policy["spec"].get(direction, [])
        for port in rule.get("ports", [])
    }


def test_network_policies(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        name = workload["metadata"]["name"]
        for policy_type in ("Ingress", "Egress"):
            assert _policies_for(docs, labels, policy_type), (
                f"no {policy_type} NetworkPolicy selects the pods of {name}"
            )
        egress = _allowed_ports(_policies_for(docs, labels, "Egress"), "egress")
        needed = {("UDP", 53), ("TCP", 53), ("TCP", 9092)}
        assert needed <= egress, f"{name}: egress must allow DNS and Kafka"

    api_labels = component(docs, "api")["spec"]["template"]["metadata"]["labels"]
    api_policies = _policies_for(docs, api_labels, "Ingress")
    assert ("TCP", 8080) in _allowed_ports(api_policies, "ingress")
    api_egress = _allowed_ports(_policies_for(docs, api_labels, "Egress"), "egress")
    assert ("TCP", 27017) in api_egress

    worker_labels = component(docs, "worker")["spec"]["template"]["metadata"]["labels"]
    worker_egress = _allowed_ports(_policies_for(docs, worker_labels, "Egress"), "egress")
    assert {("TCP", 27017), ("TCP", 443)} <= worker_egress, "worker egress: MongoDB and HTTPS"

    # Metrics ports (worker, kafka-exporter): only from the monitoring namespace.
    for name, port in (("worker", 8081), (EXPORTER, EXPORTER_PORT)):
        labels = component(docs, name)["spec"]["template"]["metadata"]["labels"]
        rules = _ingress_rules(docs, labels)
        assert rules, f"the {name} metrics port {port} must be reachable from monitoring"
        for rule in rules:
            assert [p["port"] for p in rule.get("ports", [])] == [port], name
            assert rule.get("from") == MONITORING_ONLY, (
                f"the {name} metrics port is for the monitoring namespace only"
            )

    # kafka-exporter talks to Kafka (and DNS), nothing else.
    exporter_labels = component(docs, EXPORTER)["spec"]["template"]["metadata"]["labels"]
    exporter_egress = _allowed_ports(_policies_for(docs, exporter_labels, "Egress"), "egress")
    assert exporter_egress == {("UDP", 53), ("TCP", 53), ("TCP", 9092)}, (
        f"kafka-exporter egress must be DNS and Kafka only, not {sorted(exporter_egress)}"
    )


# ---------------------------------------------------------------------------
# kafka-exporter: consumer lag of the app's brokers, scraped by Prometheus
# ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """Literal and ConfigMap-sourced variables of a container (Secrets are left out)."""
    env: dict[str, str] = {}
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            data = named(docs, "ConfigMap", ref["name"]).get("data", {})
            assert ref["key"] in data, f"ConfigMap {ref['name']} has no key {ref['key']}"
            env[variable["name"]] = data[ref["key"]]
        elif "value" in variable:
            env[variable["name"]] = variable["value"]
    return env


def _kafka_servers(docs: list[Doc], container: Doc) -> list[str]:
    """The --kafka.server values, with $(VAR) expanded as the kubelet does."""
    env = _container_env(docs, container)
    flags = [*container.get("command", []), *container.get("args", [])]
    return [
        _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), flag.split("=", 1)[1])
        for flag in flags
        if flag.startswith("--kafka.server=")
    ]


def test_kafka_exporter_watches_the_app_brokers(docs: list[Doc]) -> None:
    exporter = component(docs, EXPORTER)
    container = app_container(exporter)
    assert exporter["spec"].get("replicas") == 1, "run one kafka-exporter (replicas: 1)"

    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    compose_image = compose["services"][EXPORTER]["image"]
    assert container["image"] == compose_image, (
        f"kafka-exporter image {container['image']} differs from docker-compose.yml's "
        f"{compose_image}: keep the two in step"
    )
    assert container["image"].startswith("danielqsj/kafka-exporter:v"), "pin a release tag"

    app_servers = {
        name: config(docs, component(docs, name))["KAFKA_BOOTSTRAP_SERVERS"]
        for name in ("api", "worker")
    }
    assert len(set(app_servers.values())) == 1, f"api and worker brokers differ: {app_servers}"
    expected = app_servers["worker"].split(",")
    servers = _kafka_servers(docs, container)
    assert servers, "kafka-exporter needs --kafka.server=$(KAFKA_BOOTSTRAP_SERVERS) in its args"
    for server in servers:
        assert "$(" not in server, f"kafka-exporter: unresolved variable in {server!r}"
        assert "," not in server, (
            f"kafka-exporter: --kafka.server={server} is a list, but kafka_exporter takes one "
            "--kafka.server flag per broker: keep KAFKA_BOOTSTRAP_SERVERS a single host:port "
            "or give the exporter one literal flag per broker (deploy/k8s/README.md)"
        )
    assert servers == expected, (
        f"kafka-exporter watches {servers}, the app KAFKA_BOOTSTRAP_SERVERS={expected}"
    )
    # Read from the app's own ConfigMap, so the two cannot drift apart.
    app_config_map = next(
        source["configMapRef"]["name"]
        for source in app_container(component(docs, "worker"))["envFrom"]
        if "configMapRef" in source
    )
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            assert ref["name"] == app_config_map, (
                f"kafka-exporter reads ConfigMap {ref['name']}, the app {app_config_map}"
            )


def test_kafka_exporter_is_scraped(docs: list[Doc]) -> None:
    exporter = component(docs, EXPORTER)
    container = app_container(exporter)
    assert port_number(container, "metrics") == EXPORTER_PORT, "name the port 9308 `metrics`"
    for probe_name in ("livenessProbe", "readinessProbe"):
        probe = container.get(probe_name)
        assert probe, f"kafka-exporter: missing {probe_name}"
        assert probe["httpGet"]["path"] == "/healthz", f"kafka-exporter: {probe_name} /healthz"
        assert port_number(container, probe["httpGet"]["port"]) == EXPORTER_PORT

    annotations = exporter["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true", "kafka-exporter: prometheus.io/scrape"
    assert annotations.get("prometheus.io/port") == str(EXPORTER_PORT), "prometheus.io/port"
    assert annotations.get("prometheus.io/path") == "/metrics", "prometheus.io/path"

    # deploy/prometheus/prometheus-kubernetes.yml scrapes job kafka-exporter at a
    # static host:port; the host must be the Service that selects the exporter.
    prometheus = yaml.safe_load(PROMETHEUS_KUBERNETES.read_text())
    jobs = [j for j in prometheus["scrape_configs"] if j["job_name"] == EXPORTER]
    assert len(jobs) == 1, f"{PROMETHEUS_KUBERNETES.name}: expected one job {EXPORTER}"
    targets = [t for static in jobs[0].get("static_configs", []) for t in static["targets"]]
    assert len(targets) == 1, (
        f"{PROMETHEUS_KUBERNETES.name}: job {EXPORTER} is expected to scrape one static "
        f"target (the Service); update this test if it moved to service discovery"
    )
    host, _, port = targets[0].rpartition(":")
    labels = exporter["spec"]["template"]["metadata"]["labels"]
    services = [s for s in of_kind(docs, "Service") if matches(s["spec"]["selector"], labels)]
    assert len(services) == 1, "expected one Service selecting the kafka-exporter pods"
    service = services[0]
    name, _, rest = host.partition(".")
    assert name == service["metadata"]["name"], (
        f"Prometheus scrapes {targets[0]}, the exporter's Service is {service['metadata']['name']}"
    )
    namespace = service["metadata"].get("namespace")
    if rest and namespace:
        assert rest.split(".")[0] == namespace, f"Prometheus target {host}: namespace {namespace}"
    assert int(port) in [p["port"] for p in service["spec"]["ports"]], (
        f"Prometheus scrapes port {port}; the Service {name} exposes {service['spec']['ports']}"
    )


# ---------------------------------------------------------------------------
# The topic Job, the base and the production overlay
# ---------------------------------------------------------------------------


def _created_topics(script: str) -> list[str]:
    return re.findall(r'create_topic "\$\{TOPIC_PREFIX\}([\w.]+)"', script)


def test_topics_job_creates_the_compose_topics(docs: list[Doc]) -> None:
    jobs = of_kind(docs, "Job")
    if not jobs:
        pytest.skip("no topic Job in this kustomization")
    compose_topics = _created_topics(COMPOSE_TOPICS_SCRIPT.read_text())
    assert REQUESTS_TOPIC in compose_topics
    for job in jobs:
        container = app_container(job)
        script = "\n".join([*container.get("command", []), *container.get("args", [])])
        assert _created_topics(script) == compose_topics, (
            f"Job {job['metadata']['name']} must create the same topics as "
            f"deploy/compose/create-topics.sh"
        )
        assert "--if-not-exists" in script
        assert container["image"].startswith("apache/kafka:")


def test_base_is_namespace_agnostic() -> None:
    docs = render("base")
    namespaced = [doc["metadata"]["name"] for doc in docs if "namespace" in doc["metadata"]]
    assert not namespaced, f"the base must not set namespaces: {namespaced}"
    assert not of_kind(docs, "Namespace")


def test_production_overlay_pins_namespace_and_image() -> None:
    docs = render("production")
    kustomization = yaml.safe_load((TARGETS["production"] / "kustomization.yaml").read_text())
    namespace = kustomization["namespace"]
    assert namespace == "persona"
    assert [n["metadata"]["name"] for n in of_kind(docs, "Namespace")] == [namespace]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]

    (image,) = [i for i in kustomization["images"] if i["name"] == "persona-pipeline"]
    assert "/" in image["newName"], "pin the image to a registry in the overlay"
    assert image.get("newTag") not in (None, "", "latest", "local") or image.get("digest")
    pinned = f"{image['newName']}:{image['newTag']}"
    for name in ("api", "worker"):
        assert app_container(component(docs, name))["image"] == pinned, name

    base_hpa = of_kind(render("base"), "HorizontalPodAutoscaler")[0]
    hpa = of_kind(docs, "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["maxReplicas"] > base_hpa["spec"]["maxReplicas"]
    assert config(docs, component(docs, "api"))["READS_REQUIRE_KEY"] == "true"
