"""Static checks of deploy/: the Dockerfile, Compose, Caddy and the Kubernetes manifests.

No Docker engine runs here, so the image is checked by reading the Dockerfile. The manifests are
rendered with `kubectl kustomize` when kubectl is installed, else by the small renderer below
(resources, namespace, images, configMapGenerator merge, strategic-merge and JSON patches: the
subset the overlay uses), and the rendered objects are checked against the code they deploy.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.core.management import get_commands
from gunicorn.config import Config

from idp.middleware import ProbeMiddleware

pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
README = (DEPLOY / "README.md").read_text()

# --- Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()))
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


DOCKERFILE = dockerfile_instructions((DEPLOY / "Dockerfile").read_text())
STAGES = stages(DOCKERFILE)
FINAL = STAGES[-1]


def test_dockerfile_is_multi_stage_on_slim_python_311():
    assert len(STAGES) >= 2
    args = dict(arg.split("=", 1) for keyword, arg in DOCKERFILE if keyword == "ARG" and "=" in arg)
    for stage in STAGES:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image), image


def test_final_image_runs_as_non_root_without_build_tools():
    users = [arg for keyword, arg in FINAL if keyword == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    runs = " ".join(arg for keyword, arg in FINAL if keyword == "RUN")
    # What the runtime installs: xmlsec1, which pysaml2 runs to sign and verify, and the
    # OpenLDAP and SASL libraries python-ldap links (directory/).
    installed = re.findall(
        r"apt-get install -y --no-install-recommends ([\w .-]+?)(?: \\|&&|$)", runs
    )
    assert [pkg.split() for pkg in installed] == [["xmlsec1", "libldap-2.5-0", "libsasl2-2"]], (
        installed
    )
    assert "build-essential" not in runs
    # The build tools exist only in an earlier stage.
    assert any("build-essential" in arg for stage in STAGES[:-1] for _k, arg in stage)


def test_no_secret_reaches_the_image():
    copies = [arg for keyword, arg in DOCKERFILE if keyword in {"COPY", "ADD"}]
    for arg in copies:
        sources = [part for part in shlex.split(arg) if not part.startswith("--")][:-1]
        for source in sources:
            assert not re.search(r"(^|/)\.env|\.pem$|\.key$|(^|/)var(/|$)|secret", source), arg
            if not arg.startswith("--from"):
                assert (ROOT / source).exists(), f"COPY source {source} does not exist"
    # No secret-looking ENV or ARG in the final image.
    for keyword, arg in FINAL:
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"SECRET|PASSWORD|TOKEN|PRIVATE_KEY", arg), arg
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {"**/.env", "**/*.pem", "var", ".git"} <= set(ignored)


def test_every_app_of_the_project_is_in_the_image():
    """Each of the project's own packages in INSTALLED_APPS is copied into the stage that runs
    Django to collect the static files and into the runtime image: a missing one stops the
    container at start-up (ModuleNotFoundError), which no test outside a Docker build shows."""
    from django.conf import settings

    ours = {
        name.split(".")[0]
        for name in settings.INSTALLED_APPS
        if (ROOT / name.split(".")[0] / "__init__.py").exists()
    }
    assert {"accounts", "oauth_clients", "idp"} <= ours
    for stage in (STAGES[1], FINAL):
        copied = {
            shlex.split(arg)[-1].removeprefix("./")
            for keyword, arg in stage
            if keyword == "COPY" and "--from" not in arg
        }
        assert ours - copied == set(), stage[0]


def test_static_files_are_collected_in_a_discarded_stage():
    collect = [
        (index, arg)
        for index, stage in enumerate(STAGES)
        for keyword, arg in stage
        if keyword == "RUN" and "collectstatic" in arg
    ]
    assert collect, "collectstatic is not run at build"
    assert all(index < len(STAGES) - 1 for index, _arg in collect)
    assert any(
        keyword == "COPY" and "--from=static" in arg and "staticfiles" in arg
        for keyword, arg in FINAL
    )


def test_translations_are_compiled_in_a_discarded_stage_and_shipped():
    compile_runs = [
        (index, arg)
        for index, stage in enumerate(STAGES)
        for keyword, arg in stage
        if keyword == "RUN" and "msgfmt --check" in arg
    ]
    assert compile_runs, "the catalogues are not compiled at build"
    assert all(index < len(STAGES) - 1 for index, _arg in compile_runs)  # gettext stays behind
    assert any(
        keyword == "COPY" and "--from=static" in arg and "locale" in arg for keyword, arg in FINAL
    )
    assert "**/*.mo" in (DEPLOY / "Dockerfile.dockerignore").read_text().split()


def test_collectstatic_works_without_database_secret_or_signing_key(tmp_path):
    """What the build stage runs, here: no database, a throwaway secret, no signing key."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "IDP_ISSUER": "https://idp.example.com",
        "DJANGO_SECRET_KEY": "d" * 64,
        "IDP_DATA_DIR": str(tmp_path / "data"),
        "IDP_STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/unreachable",
    }
    result = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()
    assert not (tmp_path / "data" / "signing_keys").exists()


def test_image_health_check_and_gunicorn_entry_point():
    healthchecks = [arg for keyword, arg in FINAL if keyword == "HEALTHCHECK"]
    assert healthchecks
    assert "/healthz" in healthchecks[0]
    (entrypoint,) = [json.loads(arg) for keyword, arg in FINAL if keyword == "ENTRYPOINT"]
    assert entrypoint[0] == "gunicorn"
    assert "/app/deploy/gunicorn.conf.py" in entrypoint


def test_gunicorn_config_values():
    config: dict = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), config)  # noqa: S102 (our own config file)
    assert config["workers"] >= 3
    assert config["graceful_timeout"] < 40  # inside the pod's terminationGracePeriodSeconds
    assert config["timeout"] >= config["graceful_timeout"]
    assert config["accesslog"] is None  # the app's JSON line is the access log
    handlers = config["logconfig_dict"]["loggers"]["gunicorn.access"]["handlers"]
    assert handlers == ["null"]  # gunicorn's line would carry query strings
    assert config["control_socket_disable"] is True


def test_gunicorn_builds_no_access_line_but_still_logs_its_errors():
    """The access atoms are not even computed (the null handler would drop them anyway)."""
    config: dict = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), config)  # noqa: S102 (our own config file)
    cfg = Config()
    for name in ("accesslog", "errorlog", "loglevel", "logconfig_dict", "logger_class"):
        cfg.set(name.lower(), config[name])
    logger = cfg.logger_class(cfg)
    assert logger.access_log_enabled is False
    with mock.patch.object(logger, "atoms", side_effect=AssertionError("atoms built")):
        logger.access(mock.Mock(), mock.Mock(), {}, mock.Mock())
    assert logger.error_log.isEnabledFor(logging.ERROR)


# --- Compose and Caddy


def load_yaml(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_compose_runs_two_replicas_behind_caddy_after_a_one_shot_migration():
    (compose,) = load_yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "idp1", "idp2", "caddy"} <= services.keys()
    assert "migrate" in services["migrate"]["entrypoint"]
    for replica in ("idp1", "idp2"):
        service = services[replica]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["env_file"] == ".env"
        assert service["read_only"] is True
        assert service["environment"]["IDP_TRUSTED_PROXY_COUNT"] == "1"
    assert "443:443" in services["caddy"]["ports"]
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"reverse_proxy\s+idp1:8000\s+idp2:8000", caddyfile)
    assert "health_uri /readyz" in caddyfile
    assert 'request>uri regexp "\\?.*$"' in caddyfile  # no query strings in Caddy's log


def test_compose_secrets_come_from_an_uncommitted_env_file():
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert required <= defined, required - defined
    for line in example.splitlines():
        if re.match(r"^\w*(SECRET|PASSWORD|TOKEN|PEPPER)\w*=", line):
            assert line.endswith("="), f"example carries a value: {line}"
    for path in ("deploy/.env", "deploy/signing-keys/1700000000.pem", "deploy/signing-keys/x"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not ignored by git"


# --- Kubernetes

API_VERSIONS = {
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Ingress": "networking.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}


def kustomization(directory: Path) -> dict:
    (doc,) = load_yaml(directory / "kustomization.yaml")
    return doc


def merge(base: object, patch: object) -> object:
    """Strategic merge for the shapes the overlay patches: maps, and lists of named items."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all("name" in i for i in patch):
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            for index, existing in enumerate(merged_list):
                if existing.get("name") == item["name"]:
                    merged_list[index] = merge(existing, item)
                    break
            else:
                merged_list.append(item)
        return merged_list
    return patch


def json_patch(doc: dict, operations: list[dict]) -> dict:
    doc = copy.deepcopy(doc)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        last = parts[-1]
        assert op["op"] in {"add", "replace"}, op
        if isinstance(target, list):
            target[int(last)] = op["value"]
        else:
            assert op["op"] == "add" or last in target, f"replace of a missing path {op}"
            target[last] = op["value"]
    return doc


def python_render(directory: Path) -> list[dict]:
    config = kustomization(directory)
    docs: list[dict] = []
    for resource in config.get("resources", []):
        path = directory / resource
        assert path.exists(), f"{directory}: resource {resource} does not exist"
        docs += python_render(path) if path.is_dir() else load_yaml(path)
    for generator in config.get("configMapGenerator", []):
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        existing = [
            d
            for d in docs
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == (generator["name"])
        ]
        if generator.get("behavior") == "merge":
            assert existing, f"merge into a ConfigMap the base does not generate: {generator}"
            existing[0]["data"].update(data)
        else:
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": generator["name"]},
                    "data": data,
                }
            )
    for patch in config.get("patches", []):
        (body,) = load_yaml(directory / patch["path"])
        if isinstance(body, list):
            target = patch["target"]
            matches = [
                i
                for i, d in enumerate(docs)
                if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
            ]
        else:
            matches = [
                i
                for i, d in enumerate(docs)
                if d["kind"] == body["kind"] and d["metadata"]["name"] == body["metadata"]["name"]
            ]
        assert matches, f"patch {patch['path']} matches no resource"
        for index in matches:
            docs[index] = (
                json_patch(docs[index], body)
                if isinstance(body, list)
                else merge(docs[index], body)
            )
    images = {image["name"]: image for image in config.get("images", [])}
    namespace = config.get("namespace")
    for doc in docs:
        if namespace and doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = namespace
        for container in containers(doc):
            if container["image"] in images:
                image = images[container["image"]]
                container["image"] = f"{image['newName']}:{image['newTag']}"
    return docs


def kubectl_render(directory: Path) -> list[dict]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(directory: Path) -> list[dict]:
    """kubectl's kustomize where installed (authoritative), else the renderer above."""
    if shutil.which("kubectl"):
        return kubectl_render(directory)
    return python_render(directory)


def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] in {"Deployment", "Job"}:
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return [] if spec is None else spec.get("containers", []) + spec.get("initContainers", [])


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


RENDERED = {
    "base": python_render(K8S / "base"),
    "production": render(K8S / "overlays" / "production"),
}


def test_every_kustomization_resource_and_patch_exists():
    for directory in (K8S / "base", K8S / "overlays" / "production"):
        config = kustomization(directory)
        for resource in config.get("resources", []):
            assert (directory / resource).exists(), resource
        for patch in config.get("patches", []):
            assert (directory / patch["path"]).exists(), patch
    # Every manifest file in base is listed (nothing silently left out).
    listed = set(kustomization(K8S / "base")["resources"])
    on_disk = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == listed


@pytest.mark.parametrize("variant", ["base", "production"])
def test_kinds_and_api_versions(variant):
    docs = RENDERED[variant]
    kinds = {doc["kind"] for doc in docs}
    required = {
        "Deployment",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
        "CronJob",
        "ConfigMap",
    }
    assert required <= kinds
    for doc in docs:
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], doc["kind"]
        assert doc["metadata"]["name"]


@pytest.mark.parametrize("variant", ["base", "production"])
def test_probes_point_at_real_paths_and_ports(variant):
    deployment = one(RENDERED[variant], "Deployment", "idp")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {port["name"] for port in container["ports"]}
    probes = {
        name: container[name]["httpGet"]
        for name in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        # Answered by the probe middleware, whatever Host header the kubelet sends.
        assert probe["path"] in ProbeMiddleware.VIEWS
        assert probe["port"] in port_names
    assert container["ports"][0]["containerPort"] == 8000  # gunicorn's GUNICORN_BIND default
    strategy = deployment["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("variant", ["base", "production"])
def test_every_container_is_non_root_read_only_and_sized(variant):
    checked = 0
    for doc in RENDERED[variant]:
        spec = pod_spec(doc)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec.get("automountServiceAccountToken") is False
        mounts_tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in containers(doc):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, doc["metadata"]["name"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys()
            assert {"cpu", "memory"} <= resources["limits"].keys()
            # The only writable place is /tmp (IDP_DATA_DIR, Prometheus files).
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]  # noqa: S108 (a path in a manifest, not a file we open)
            assert tmp
            assert tmp[0]["name"] in mounts_tmp
            checked += 1
    assert checked == 4  # web, background worker, migrate Job, cleartokens CronJob


@pytest.mark.parametrize("variant", ["base", "production"])
def test_jobs_run_real_management_commands(variant):
    commands = get_commands()
    job = one(RENDERED[variant], "Job")
    cron = one(RENDERED[variant], "CronJob")
    assert containers(job)[0]["command"][:3] == ["python", "manage.py", "migrate"]
    assert containers(cron)[0]["command"][:3] == ["python", "manage.py", "cleartokens"]
    assert {"migrate", "cleartokens"} <= commands.keys()
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("variant", ["base", "production"])
def test_services_selectors_and_targets_line_up(variant):
    docs = RENDERED[variant]
    deployment = one(docs, "Deployment", "idp")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = one(docs, "Service", "idp")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    ingress = one(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}


def test_production_overlay_sets_issuer_image_and_namespace():
    docs = RENDERED["production"]
    config = one(docs, "ConfigMap")
    assert config["data"]["IDP_ISSUER"].startswith("https://")
    assert config["data"]["IDP_TRUSTED_PROXY_COUNT"] == "1"
    deployment = one(docs, "Deployment", "idp")
    assert deployment["spec"]["replicas"] >= 3
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "idp"
        for container in containers(doc):
            assert container["image"].startswith("registry.example.com/company-idp:")
    ingress = one(docs, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    assert config["data"]["IDP_ISSUER"] == f"https://{host}"
    assert ingress["spec"]["tls"][0]["hosts"] == [host]


@pytest.mark.parametrize("variant", ["base", "production"])
def test_every_secret_and_config_reference_is_defined_or_documented(variant):
    docs = RENDERED[variant]
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    secret_keys: set[tuple[str, str]] = set()
    secret_volumes: set[str] = set()
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret_volumes.add(volume["secret"]["secretName"])
        for container in containers(doc):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    name = source["configMapRef"]["name"]
                    # kubectl adds a content hash suffix to generated ConfigMaps.
                    assert any(n == name or n.startswith(f"{name}-") for n in config_maps), name
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret_keys.add((ref["name"], ref["key"]))
                    assert ref["key"] == variable["name"]
    assert ("idp-secrets", "DATABASE_URL") in secret_keys
    assert ("idp-secrets", "REDIS_URL") in secret_keys
    assert ("idp-secrets", "DJANGO_SECRET_KEY") in secret_keys
    assert "idp-signing-keys" in secret_volumes
    overlay_comment = (K8S / "overlays" / "production" / "kustomization.yaml").read_text()
    for name, key in secret_keys:
        # The README's secret table names each key, and the command that creates it.
        assert re.search(rf"\|\s*`{name}`\s*\|\s*`{key}`\s*\|", README), (name, key)
        assert key in overlay_comment
    for name in secret_volumes | {"idp-tls"}:
        assert f"`{name}`" in README
        assert name in overlay_comment
