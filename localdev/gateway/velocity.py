"""API Gateway's mapping templates rendered with a Velocity engine (airspeed-ext, the one LocalStack
uses): the `$input`, `$context`, `$util` and `$stageVariables` a template sees, as API Gateway
documents them ("API Gateway mapping template and access logging variable reference").
"""
from __future__ import annotations

import base64
import functools
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import airspeed
from jsonpath_ng import parse as jsonpath


def _velocity_conditions() -> None:
    """airspeed-ext takes `#if($x)` to be true when `$x` is null (`Condition.calculate`); Velocity 1.7,
    which API Gateway runs, takes a null reference to be false (a PutRecords result without `ErrorCode`
    is a record that landed). The condition is given Velocity's rule here."""
    from airspeed import operators

    def calculate(self: operators.Condition, namespace: Any, loader: Any) -> bool:
        return bool(self.expression.calculate(namespace, loader))

    operators.Condition.calculate = calculate


_velocity_conditions()


class TemplateFailed(Exception):
    """A template that Velocity cannot render (API Gateway answers 500)."""


@functools.lru_cache(maxsize=1024)
def _compiled_path(expression: str) -> Any:
    return jsonpath(expression)


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> airspeed.Template:
    return airspeed.Template(template)


SIMPLE_PATH = re.compile(r"^\$((?:\.[A-Za-z_][\w-]*|\[\d+\])*)$")
STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")


def _path(document: Any, expression: str) -> Any:
    """`$input.path(x)`: the value at a JSONPath; a missing path is null (nothing to iterate)."""
    if expression in ("$", ""):
        return document
    simple = SIMPLE_PATH.match(expression)
    if simple:  # `$.a.b[3]`, the common case, without a JSONPath parser per index
        value = document
        for name, index in STEP.findall(simple.group(1)):
            try:
                value = value[name] if name else value[int(index)]
            except (KeyError, IndexError, TypeError):
                return None
        return value
    matches = [m.value for m in _compiled_path(expression).find(document)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 and "[*]" not in expression and ".." not in expression else matches


class Input:
    """`$input`: the request (or, in an integration response, the integration's) body and parameters."""

    def __init__(self, body: str, params: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.body = body
        self._params = params or {"path": {}, "querystring": {}, "header": {}}
        self._document: Any = None
        self._parsed = False

    def _json_body(self) -> Any:
        if not self._parsed:
            try:
                self._document = json.loads(self.body) if self.body else {}
            except ValueError:
                self._document = None
            self._parsed = True
        return self._document

    def path(self, expression: str) -> Any:
        return _path(self._json_body(), expression)

    def json(self, expression: str) -> str:
        return json.dumps(_path(self._json_body(), expression), separators=(",", ":"))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring", "header"):
            if name in self._params.get(where, {}):
                return self._params[where][name]
        return ""


class Util:
    """`$util`."""

    @staticmethod
    def base64Encode(text: Any) -> str:
        return base64.b64encode(str(text).encode()).decode()

    @staticmethod
    def base64Decode(text: Any) -> str:
        return base64.b64decode(str(text)).decode()

    @staticmethod
    def escapeJavaScript(text: Any) -> str:
        # as Java's StringEscapeUtils.escapeJavaScript: quotes and control characters escaped
        return json.dumps("" if text is None else str(text))[1:-1].replace("'", "\\'")

    @staticmethod
    def parseJson(text: Any) -> Any:
        return json.loads(str(text))

    @staticmethod
    def urlEncode(text: Any) -> str:
        return urllib.parse.quote_plus(str(text))

    @staticmethod
    def urlDecode(text: Any) -> str:
        return urllib.parse.unquote_plus(str(text))


def render(template: str, *, body: str, context: dict[str, Any], params: Mapping[str, Mapping[str, str]] | None = None,
           stage_variables: Mapping[str, str] | None = None) -> str:
    """The template merged with `$input` (over `body`), `$context` (which the template may change:
    `$context.responseOverride.status`), `$util` and `$stageVariables`."""
    try:
        return _compiled(template).merge({
            "input": Input(body, params), "context": context, "util": Util(),
            "stageVariables": dict(stage_variables or {})})
    except (airspeed.TemplateError, ValueError, TypeError, AttributeError, KeyError) as error:
        raise TemplateFailed(f"{type(error).__name__}: {error}") from error
