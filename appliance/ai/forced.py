"""Jump-forward: the text a JSON schema forces next, so the engine appends it without sampling.

For the schemas the appliance uses (objects whose properties are all required, in a fixed order,
arrays with item bounds, strings, string and integer enums) much of the output is decided by the
schema, not the model: the keys, the punctuation between them, the opening quote of a string, the
rest of an enum value once its first letters are chosen, the closing bracket of a full array.
:class:`ForcedText` follows the generated text character by character (a small pushdown automaton
over the schema) and :meth:`ForcedText.forced` returns that decided continuation, written compactly
(no optional whitespace). The engine tokenizes it, checks every token against the grammar before
accepting it, and evaluates those tokens in one batch instead of one sampling step each.

The automaton never decides anything the grammar does not allow, but it does not have to be exact:
when it meets a schema construct it does not model (``anyOf``, ``$ref``, optional properties,
numbers that are not enums) it stops forcing for good, and the engine just samples as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from .grammar import SENTENCE_AFTER, SENTENCE_ENDS

_WHITESPACE = " \t\n\r"


def _characters(raw: str) -> int:
    """Characters of a JSON string body as the grammar counts them (an escape sequence is one)."""
    count, i = 0, 0
    while i < len(raw):
        i += 6 if raw.startswith("\\u", i) else 2 if raw[i] == "\\" else 1
        count += 1
    return count


@dataclass
class _Frame:
    kind: str  # "object" | "array" | "string" | "scalar"
    schema: dict[str, Any]
    state: str = ""
    keys: tuple[str, ...] = ()
    index: int = 0  # object: properties done; array: items done
    text: str = ""  # string: characters so far (escapes kept raw); scalar: characters so far
    escape: bool = False
    is_key: bool = False


@dataclass
class ForcedText:
    """Follows generated JSON against ``schema``; :meth:`forced` is the continuation it decides."""

    schema: dict[str, Any]
    stack: list[_Frame] = field(default_factory=list)
    started: bool = False
    done: bool = False  # the root value is complete: nothing more may be generated
    lost: bool = False  # met something it does not model: force nothing from here on

    # -- schema helpers ---------------------------------------------------------------------------
    @staticmethod
    def _kind(schema: dict[str, Any]) -> str:
        if not isinstance(schema, dict) or any(k in schema for k in ("anyOf", "oneOf", "allOf", "$ref")):
            return "unknown"
        if "enum" in schema or "const" in schema:
            values = schema.get("enum", [schema.get("const")])
            if all(isinstance(v, str) for v in values):
                return "string"
            if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                return "scalar"
            return "unknown"
        t = schema.get("type")
        if t == "object":
            props = schema.get("properties", {})
            if set(schema.get("required", [])) != set(props) or schema.get("additionalProperties", True) is not False:
                return "unknown"  # optional properties: the model chooses which come next
            return "object"
        if t in ("array", "string"):
            return str(t)
        if t in ("integer", "number", "boolean", "null"):
            return "scalar"
        return "unknown"

    @staticmethod
    def _options(schema: dict[str, Any]) -> list[str] | None:
        if "enum" in schema or "const" in schema:
            return [json.dumps(v) for v in schema.get("enum", [schema.get("const")])]
        return None

    # -- following the text ----------------------------------------------------------------------
    def feed(self, text: str) -> None:
        for ch in text:
            if self.lost or self.done:
                return
            self._char(ch)

    def _open(self, schema: dict[str, Any], ch: str) -> None:
        """A value of ``schema`` starts with character ``ch``."""
        kind = self._kind(schema)
        if kind == "unknown":
            self.lost = True
        elif kind == "object" and ch == "{":
            self.stack.append(_Frame("object", schema, "key", tuple(schema.get("properties", {}))))
        elif kind == "array" and ch == "[":
            self.stack.append(_Frame("array", schema, "first"))
        elif kind == "string" and ch == '"':
            self.stack.append(_Frame("string", schema))
        elif kind == "scalar" and ch not in '{["':
            self.stack.append(_Frame("scalar", schema, text=ch))
        else:
            self.lost = True

    def _value_done(self) -> None:
        if not self.stack:
            self.done = True
            return
        parent = self.stack[-1]
        if parent.kind == "object":
            parent.index += 1
            parent.state = "after"
        elif parent.kind == "array":
            parent.index += 1
            parent.state = "after"

    def _char(self, ch: str) -> None:
        if not self.stack:
            if ch in _WHITESPACE:
                return
            if self.started:
                self.lost = True
                return
            self.started = True
            self._open(self.schema, ch)
            return
        top = self.stack[-1]
        if top.kind == "string":
            if top.escape:
                top.escape = False
                top.text += ch
            elif ch == "\\":
                top.escape = True
                top.text += ch
            elif ch == '"':
                self.stack.pop()
                if top.is_key:
                    parent = self.stack[-1]
                    expected = parent.keys[parent.index] if parent.index < len(parent.keys) else None
                    if expected is None or json.loads('"' + top.text + '"') != expected:
                        self.lost = True
                    parent.state = "colon"
                else:
                    self._value_done()
            else:
                top.text += ch
            return
        if top.kind == "scalar":
            if ch in ",]}" or ch in _WHITESPACE:
                self.stack.pop()
                self._value_done()
                if ch not in _WHITESPACE:
                    self._char(ch)
            else:
                top.text += ch
            return
        if ch in _WHITESPACE:
            return
        if top.kind == "object":
            if top.state == "key" and ch == '"':
                self.stack.append(_Frame("string", {"type": "string"}, is_key=True))
            elif top.state == "key" and ch == "}" and not top.keys:
                self.stack.pop()
                self._value_done()
            elif top.state == "colon" and ch == ":":
                top.state = "value"
            elif top.state == "value":
                self._open(top.schema["properties"][top.keys[top.index]], ch)
            elif top.state == "after" and ch == ",":
                top.state = "key"
            elif top.state == "after" and ch == "}":
                self.stack.pop()
                self._value_done()
            else:
                self.lost = True
            return
        # array
        if top.state in ("first", "item") and not (top.state == "first" and ch == "]"):
            self._open(top.schema.get("items", {}), ch)
        elif ch == "]" and top.state in ("first", "after"):
            self.stack.pop()
            self._value_done()
        elif top.state == "after" and ch == ",":
            top.state = "item"
        else:
            self.lost = True

    # -- what comes next ---------------------------------------------------------------------------
    def _start(self, schema: dict[str, Any]) -> str:
        """The forced beginning of a value of ``schema`` (only the first step; forced() repeats)."""
        kind = self._kind(schema)
        options = self._options(schema)
        if options is not None:
            return _common_prefix(options)
        if kind == "object":
            return "{"
        if kind == "array":
            return "["
        if kind == "string":
            return '"'
        return ""

    def _step(self) -> str:
        """One forced piece; called only on a copy (it may close a complete enum number)."""
        if self.lost or self.done:
            return ""
        if not self.stack:
            return "" if self.started else self._start(self.schema)
        top = self.stack[-1]
        if top.kind == "string":
            options = self._options(top.schema)
            after = top.schema.get(SENTENCE_AFTER)
            if (options is None and not top.is_key and isinstance(after, int) and top.text
                    and top.text[-1] in SENTENCE_ENDS and not top.escape and _characters(top.text) > after):
                return '"'  # past x-sentence-after a sentence end closes the string (grammar.py)
            if options is None or top.is_key:
                return ""
            typed = '"' + top.text
            left = [o for o in options if o.startswith(typed)]
            return _common_prefix(left)[len(typed):] if left else ""
        if top.kind == "scalar":
            options = self._options(top.schema)
            if options is None:
                return ""
            left = [o for o in options if o.startswith(top.text)]
            if left == [top.text]:  # the only value left is complete: what follows is the parent's
                self.stack.pop()
                self._value_done()
                return self._step()
            return _common_prefix(left)[len(top.text):] if left else ""
        if top.kind == "object":
            if top.state == "key":
                if top.index < len(top.keys):
                    return json.dumps(top.keys[top.index]) + ":"
                return "}"
            if top.state == "colon":
                return ":"
            if top.state == "value":
                return self._start(top.schema["properties"][top.keys[top.index]])
            if top.state == "after":
                return "," if top.index < len(top.keys) else "}"
            return ""
        low = int(top.schema.get("minItems", 0))
        high = top.schema.get("maxItems")
        items = top.schema.get("items", {})
        if top.state == "first":
            if high == 0:
                return "]"
            return self._start(items) if low >= 1 else ""
        if top.state == "item":
            return self._start(items)
        if top.state == "after":
            if high is not None and top.index >= int(high):
                return "]"
            if top.index < low:
                return ","
        return ""

    def copy(self) -> ForcedText:
        return replace(self, stack=[replace(f) for f in self.stack])

    def forced(self, limit: int = 64) -> str:
        """The continuation the schema decides from here (empty when the model must choose)."""
        probe = self.copy()
        out = ""
        while len(out) < limit:
            step = probe._step()
            if not step:
                break
            out += step
            probe.feed(step)
        return out


def _common_prefix(options: list[str]) -> str:
    if not options:
        return ""
    first, last = min(options), max(options)
    n = 0
    while n < len(first) and n < len(last) and first[n] == last[n]:
        n += 1
    return first[:n]
