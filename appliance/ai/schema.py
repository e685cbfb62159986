"""A small JSON-schema validator for the subset that the GBNF converter supports.

Used to check every engine output (local or remote) before it is returned. It covers: type (incl.
lists), enum, const, properties, required, additionalProperties, items, prefixItems, minItems,
maxItems, minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
anyOf, oneOf, allOf and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``). Unknown keywords
are ignored, as JSON Schema requires.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidOutput

JSON = Any


class ValidationError(InvalidOutput):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or '$'}: {message}")
        self.path = path
        self.detail = message


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: JSON, t: str) -> bool:
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(t, (object,)))


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValidationError("", f"unsupported $ref {ref!r} (only local refs)")
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise ValidationError("", f"unresolvable $ref {ref!r}")
        node = node[part]
    if not isinstance(node, dict):
        raise ValidationError("", f"$ref {ref!r} is not a schema")
    return node


def validate(value: JSON, schema: dict[str, Any] | bool) -> None:
    """Raise :class:`ValidationError` (an :class:`InvalidOutput`) if ``value`` does not match."""
    root = schema if isinstance(schema, dict) else {}
    _validate(value, schema, root, "")


def is_valid(value: JSON, schema: dict[str, Any] | bool) -> bool:
    try:
        validate(value, schema)
    except ValidationError:
        return False
    return True


def _validate(v: JSON, s: dict[str, Any] | bool, root: dict[str, Any], path: str) -> None:
    if s is True or s == {}:
        return
    if s is False:
        raise ValidationError(path, "no value allowed here")
    assert isinstance(s, dict)
    if "$ref" in s:
        _validate(v, _resolve(root, s["$ref"]), root, path)
    t = s.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_is_type(v, x) for x in types):
            raise ValidationError(path, f"expected type {t}, got {type(v).__name__}")
    if "enum" in s and v not in s["enum"]:
        raise ValidationError(path, f"{v!r} not in enum {s['enum']!r}")
    if "const" in s and v != s["const"]:
        raise ValidationError(path, f"{v!r} != const {s['const']!r}")
    for sub in s.get("allOf", []):
        _validate(v, sub, root, path)
    if "anyOf" in s and not any(_ok(v, sub, root) for sub in s["anyOf"]):
        raise ValidationError(path, "matches none of anyOf")
    if "oneOf" in s and sum(_ok(v, sub, root) for sub in s["oneOf"]) != 1:
        raise ValidationError(path, "does not match exactly one of oneOf")

    if isinstance(v, str):
        if "minLength" in s and len(v) < s["minLength"]:
            raise ValidationError(path, f"shorter than minLength {s['minLength']}")
        if "maxLength" in s and len(v) > s["maxLength"]:
            raise ValidationError(path, f"longer than maxLength {s['maxLength']}")
        if "pattern" in s and not re.search(s["pattern"], v):
            raise ValidationError(path, f"does not match pattern {s['pattern']!r}")
    elif isinstance(v, int | float) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            raise ValidationError(path, f"{v} < minimum {s['minimum']}")
        if "maximum" in s and v > s["maximum"]:
            raise ValidationError(path, f"{v} > maximum {s['maximum']}")
        if "exclusiveMinimum" in s and v <= s["exclusiveMinimum"]:
            raise ValidationError(path, f"{v} <= exclusiveMinimum {s['exclusiveMinimum']}")
        if "exclusiveMaximum" in s and v >= s["exclusiveMaximum"]:
            raise ValidationError(path, f"{v} >= exclusiveMaximum {s['exclusiveMaximum']}")
    elif isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            raise ValidationError(path, f"fewer than minItems {s['minItems']} ({len(v)})")
        if "maxItems" in s and len(v) > s["maxItems"]:
            raise ValidationError(path, f"more than maxItems {s['maxItems']} ({len(v)})")
        prefix = s.get("prefixItems", [])
        for i, item in enumerate(v):
            if i < len(prefix):
                _validate(item, prefix[i], root, f"{path}[{i}]")
            elif "items" in s:
                _validate(item, s["items"], root, f"{path}[{i}]")
    elif isinstance(v, dict):
        props: dict[str, Any] = s.get("properties", {})
        for key in s.get("required", []):
            if key not in v:
                raise ValidationError(path, f"missing required property {key!r}")
        extra = s.get("additionalProperties", True)
        for key, item in v.items():
            sub_path = f"{path}.{key}"
            if key in props:
                _validate(item, props[key], root, sub_path)
            elif extra is False:
                raise ValidationError(path, f"unexpected property {key!r}")
            elif isinstance(extra, dict):
                _validate(item, extra, root, sub_path)


def _ok(v: JSON, s: dict[str, Any] | bool, root: dict[str, Any]) -> bool:
    try:
        _validate(v, s, root, "")
    except ValidationError:
        return False
    return True
