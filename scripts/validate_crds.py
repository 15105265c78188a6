"""Validate custom resources offline against the openAPIV3Schema of their CustomResourceDefinitions.

    python scripts/validate_crds.py --crds k8s/argocd/crds k8s/argocd/*.yaml

scripts/validate_deploy.sh runs it (for the ArgoCD manifests, against ArgoCD's own CRDs) with the
Python of the validators' virtualenv (scripts/deploy_tools.sh: jsonschema, PyYAML).

Strict the way `kubectl apply --validate=strict` is: an object schema that lists its properties
rejects any other field unless the CRD marks it x-kubernetes-preserve-unknown-fields, so a
misspelt field fails instead of being dropped by the API server. metadata (which CRDs leave
open) is held to the ObjectMeta fields a manifest in git may set. A document whose apiVersion
and kind no CRD defines fails too.
Exit codes: 0 valid, 1 a document is invalid, 2 bad input (a missing file, YAML that does not parse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
#: the ObjectMeta fields a committed manifest sets; the rest (uid, resourceVersion, ...) are the server's
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}


class InputError(Exception):
    """A file that cannot be read or parsed: reported in one line, exit code 2."""


def strict(node: Any) -> Any:
    """The JSON schema of one openAPIV3Schema node, with unknown fields rejected."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def load_yaml(path: Path) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc


def schemas(crd_dir: Path) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the strict JSON schema of every served version of every CRD in crd_dir."""
    found: dict[tuple[str, str], dict] = {}
    files = sorted(crd_dir.glob("*.yaml"))
    if not files:
        raise InputError(f"{crd_dir}: no CRD (*.yaml) in it")
    for path in files:
        for crd in load_yaml(path):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                api_version = f"{group}/{version['name']}"
                schema = strict(version["schema"]["openAPIV3Schema"])
                schema["properties"]["apiVersion"] = {"const": api_version}
                schema["properties"]["kind"] = {"const": kind}
                schema["properties"]["metadata"] = METADATA
                schema["required"] = sorted({"apiVersion", "kind", *schema.get("required", [])})
                jsonschema.Draft7Validator.check_schema(schema)
                found[(api_version, kind)] = schema
    if not found:
        raise InputError(f"{crd_dir}: no served CustomResourceDefinition version in its files")
    return found


def errors(doc: Any, known: dict[tuple[str, str], dict]) -> list[str]:
    """What is wrong with one document, one line per error (empty when it is valid)."""
    if not isinstance(doc, dict):
        return ["not a mapping"]
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in known:
        return [f"no CRD here defines apiVersion {key[0]!r} kind {key[1]!r} "
                f"(known: {', '.join(f'{a} {k}' for a, k in sorted(known))})"]
    validator = jsonschema.Draft7Validator(known[key])
    return [f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", type=Path, required=True, help="a directory of CRD files")
    parser.add_argument("manifests", type=Path, nargs="+", help="YAML files of custom resources")
    args = parser.parse_args(argv)
    try:
        known = schemas(args.crds)
        failed = 0
        for path in args.manifests:
            docs = load_yaml(path)
            if not docs:
                raise InputError(f"{path}: no document in it")
            for index, doc in enumerate(docs):
                meta = doc.get("metadata") if isinstance(doc, dict) else None
                name = meta.get("name", "?") if isinstance(meta, dict) else "?"
                problems = errors(doc, known)
                for problem in problems:
                    print(f"{path}[{index}] {name}: {problem}", file=sys.stderr)
                failed += bool(problems)
                if not problems:
                    print(f"{path}[{index}] {doc['kind']} {name}: valid")
    except InputError as exc:
        print(f"validate_crds: {exc}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
