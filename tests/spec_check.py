#!/usr/bin/env python3
"""Validates every response the API tests received against api/openapi.yaml, so that the
spec and the server cannot drift apart unnoticed.

  spec_check.py api/openapi.yaml responses.jsonl [events.jsonl]

Each line of responses.jsonl is {"method", "path", "status", "content_type", "body"} as
tests/test_api.c logged it. For each: the path is matched to the spec's path templates,
the status must be documented for that operation (or the route must be undocumented
altogether, as the catch-all 404 of unknown routes is), and a JSON body is validated
against the documented schema, OpenAPI 3.0 turned into JSON Schema (nullable -> null
allowed). events.jsonl, when given, holds webhook bodies as a receiver got them (one JSON
object a line, tests/test_webhooks.py): each is validated against the WebhookEvent schema.
Exit 1 listing every mismatch."""
import json, re, sys

import jsonschema
import yaml


def to_json_schema(node):
    """OpenAPI 3.0 schema objects to JSON Schema (draft 7): nullable, $ref paths."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("nullable", "example", "format", "discriminator", "xml", "externalDocs",
                 "readOnly", "writeOnly", "deprecated"):
            continue
        if k == "$ref":
            out[k] = v.replace("#/components/schemas/", "#/definitions/")
        else:
            out[k] = to_json_schema(v)
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def main():
    spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    definitions = {k: to_json_schema(v) for k, v in spec["components"]["schemas"].items()}
    responses = spec["components"].get("responses", {})
    routes = []
    for template, item in spec["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        routes.append((re.compile(rx), template, item))
    failures, checked, by_route = [], 0, {}
    for n, line in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
        r = json.loads(line)
        method, path, status = r["method"].lower(), r["path"], str(r["status"])
        match = [(t, item) for rx, t, item in routes if rx.match(path)]
        if not match:
            if status == "404":
                continue  # an unknown route: answered 404 with the error body, checked below
            failures.append(f"line {n}: {r['method']} {path} -> {status}: no such path in the spec")
            continue
        # a literal template wins over one with parameters
        template, item = sorted(match, key=lambda m: m[0].count("{"))[0]
        op = item.get(method if method != "head" else "get")
        if op is None:
            if status == "405":
                continue
            failures.append(f"line {n}: {r['method']} {template} -> {status}: method not in the spec")
            continue
        resp = op.get("responses", {}).get(status) or op.get("responses", {}).get("default")
        if resp is None:
            failures.append(f"line {n}: {r['method']} {template} -> {status}: status not documented")
            continue
        if "$ref" in resp:
            resp = responses[resp["$ref"].rsplit("/", 1)[1]]
        content = resp.get("content", {})
        ct = r["content_type"] or ""
        if not content:
            continue
        if ct not in content:
            failures.append(f"line {n}: {r['method']} {template} -> {status}: content type {ct!r} "
                            f"not among {sorted(content)}")
            continue
        schema = content[ct].get("schema")
        if not schema or ct != "application/json" or method == "head":
            continue
        try:
            body = json.loads(r["body"])
        except ValueError as e:
            failures.append(f"line {n}: {r['method']} {template} -> {status}: not JSON: {e}")
            continue
        js = dict(to_json_schema(schema), definitions=definitions)
        errs = sorted(jsonschema.Draft7Validator(js).iter_errors(body), key=lambda e: list(e.path))
        checked += 1
        key = f"{r['method']} {template} {status}"
        by_route[key] = by_route.get(key, 0) + 1
        for e in errs[:10]:
            where = "/".join(str(p) for p in e.path) or "(body)"
            failures.append(f"line {n}: {key}: at {where}: {e.message[:300]}")
    if len(sys.argv) > 3:
        js = dict(definitions["WebhookEvent"], definitions=definitions)
        for n, line in enumerate(open(sys.argv[3], encoding="utf-8"), 1):
            body = json.loads(line)
            errs = sorted(jsonschema.Draft7Validator(js).iter_errors(body), key=lambda e: list(e.path))
            checked += 1
            key = f"webhook event {body.get('type')}"
            by_route[key] = by_route.get(key, 0) + 1
            for e in errs[:10]:
                where = "/".join(str(p) for p in e.path) or "(body)"
                failures.append(f"{sys.argv[3]} line {n}: {key}: at {where}: {e.message[:300]}")
    for f in failures:
        print("FAIL:", f)
    print(f"{checked} JSON responses validated over {len(by_route)} route/status pairs; "
          f"{len(failures)} mismatches")
    for k in sorted(by_route):
        print(f"  {by_route[k]:5d}  {k}")
    if checked == 0:
        print("FAIL: no response was checked")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
