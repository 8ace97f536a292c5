"""IoT's rules engine, locally: the deployed topic rules, applied as their roles.

Each rule is read from the emulator's registry as deployed (GetTopicRule): its SQL, its Kinesis
actions with their partition-key templates, its error action. A message whose topic matches the
rule's FROM filter (or that names the rule through Basic Ingest, `$aws/rules/<rule>/...`), and
satisfies its WHERE clause if it has one (else it is dropped: no action, no error action), is
turned into the SQL's output and put into the stream with credentials of the action's role, from
STS as IoT assumes it, through the emulator's Kinesis, where every call of a deployed role is
authorized (localdev/moto_extensions/access.py): a role or key that may not put the record stops
it as on AWS. A failed action goes to the error action, in AWS's error message format, written as
the error action's role. One sensor's messages are applied in order (one lane per partition key).

The SQL understood is the subset the stacks use; anything else stops the rule's load, named.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from localdev.access.trust import IOT, assume_as

SELECT = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+'(?P<filter>[^']*)'\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
ITEM = re.compile(r"^(?P<expr>.+?)(?:\s+AS\s+(?P<alias>[A-Za-z_][A-Za-z0-9_]*))?$", re.IGNORECASE)
TEMPLATE = re.compile(r"\$\{([^}]+)\}")
WHERE = re.compile(r"^WHERE\s+(?P<condition>.+?)\s*$", re.IGNORECASE | re.DOTALL)
LANES = 4
BASIC_INGEST = "$aws/rules/"
# How a matched message ends, one of these each (Figures): the demo waits until they add up to `matched`.
SETTLED = ("put", "failed", "sql_failed", "dropped_by_where")
logger = logging.getLogger("localdev.iot.rules")


class UnsupportedSql(ValueError):
    """A rule the local rules engine cannot apply faithfully: teach localdev/iot/rules.py."""


@dataclass(frozen=True)
class Message:
    topic: str  # without the Basic Ingest prefix
    payload: bytes
    client_id: str
    principal: str  # the certificate id
    received_at_ms: int


def topic_matches(topic_filter: str, topic: str) -> bool:
    levels, wanted = topic.split("/"), topic_filter.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return True
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(levels) == len(wanted)


def _expression(text: str) -> Callable[[Message, Any], Any]:
    """One SQL expression as a function of (message, its payload parsed as JSON or None)."""
    text = text.strip()
    if text == "*":
        return lambda m, body: body
    if re.fullmatch(r"'[^']*'", text):
        literal = text[1:-1]
        return lambda msg, body: literal
    if m := re.fullmatch(r"concat\((?P<args>.*)\)", text, re.IGNORECASE | re.DOTALL):
        args = [_expression(arg) for arg in _split(m.group("args"))] if m.group("args").strip() else []
        return lambda msg, body: _concat([arg(msg, body) for arg in args])
    if m := re.fullmatch(r"topic\(\s*(\d*)\s*\)", text, re.IGNORECASE):
        n = int(m.group(1)) if m.group(1) else 0
        return lambda msg, body: msg.topic if n == 0 else (msg.topic.split("/") + [None] * n)[n - 1]
    if re.fullmatch(r"encode\(\s*\*\s*,\s*'base64'\s*\)", text, re.IGNORECASE):
        return lambda msg, body: base64.b64encode(msg.payload).decode()
    simple = {"timestamp()": lambda msg, body: msg.received_at_ms, "clientid()": lambda msg, body: msg.client_id,
              "principal()": lambda msg, body: msg.principal, "newuuid()": lambda msg, body: str(uuid.uuid4())}
    if text.lower() in simple:
        return simple[text.lower()]
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        return lambda msg, body: body.get(text) if isinstance(body, dict) else None
    raise UnsupportedSql(f"the local rules engine does not know the SQL expression {text!r}")


def _concat(values: list[Any]) -> Any:
    """IoT's concat() of strings: none is Undefined (None), one is itself, more are their texts joined.
    An Undefined argument (a topic level the topic does not have) makes the whole Undefined here."""
    if not values or any(v is None for v in values):
        return None
    if len(values) == 1:
        return values[0]
    if any(isinstance(v, (list, dict)) for v in values):
        raise UnsupportedSql("the local rules engine concatenates strings, not arrays or objects")
    return "".join(v if isinstance(v, str) else json.dumps(v) for v in values)


def _condition(text: str) -> Callable[[Message, Any], bool]:
    """A WHERE condition of the subset the stacks use: `<expression> = <expression>`. As in IoT SQL, `=`
    is true only for equal values of one type; an Undefined side makes it Undefined, which is not true."""
    equals = [i for i, char in _top_level(text) if char == "="]
    if len(equals) != 1 or text[equals[0] - 1] in "<>!" or any(
            re.search(rf"\b{word}\b", text, re.IGNORECASE) for word in ("AND", "OR", "NOT")):
        raise UnsupportedSql(f"the local rules engine applies a WHERE of one `a = b`, not {text!r}")
    left, right = _expression(text[:equals[0]]), _expression(text[equals[0] + 1:])

    def holds(msg: Message, body: Any) -> bool:
        a, b = left(msg, body), right(msg, body)
        return a is not None and b is not None and type(a) is type(b) and a == b
    return holds


@dataclass
class Rule:
    name: str
    topic_filter: str
    select: list[tuple[str | None, Callable[[Message, Any], Any]]]  # (alias or None for *, expression)
    actions: list[dict[str, Any]]
    error_action: dict[str, Any] | None
    where: Callable[[Message, Any], bool] | None = None  # None: no WHERE, every matched message

    @classmethod
    def parse(cls, name: str, rule: dict[str, Any]) -> Rule:
        match = SELECT.match(rule["sql"])
        if not match:
            raise UnsupportedSql(f"rule {name}: SQL {rule['sql']!r} is not SELECT ... FROM '<topic filter>'")
        where = None
        if rest := match.group("rest").strip():
            if not (clause := WHERE.match(rest)):
                raise UnsupportedSql(f"rule {name}: the local rules engine does not apply {rest!r}")
            try:
                where = _condition(clause.group("condition"))
            except UnsupportedSql as error:
                raise UnsupportedSql(f"rule {name}: {error}") from None
        select = []
        for item in _split(match.group("select")):
            parts = ITEM.match(item.strip())
            assert parts is not None
            alias = parts.group("alias")
            if alias is None and parts.group("expr").strip() != "*":
                raise UnsupportedSql(f"rule {name}: give {item.strip()!r} a name (AS ...)")
            select.append((alias, _expression(parts.group("expr"))))
        for action in rule.get("actions") or []:
            if set(action) - {"kinesis"}:
                raise UnsupportedSql(f"rule {name}: the local rules engine applies Kinesis actions only, not "
                                     f"{sorted(set(action) - {'kinesis'})}")
        error = rule.get("errorAction") or None
        if error and set(error) - {"cloudwatchLogs"}:
            raise UnsupportedSql(f"rule {name}: the local error action is CloudWatch Logs only, not {sorted(error)}")
        return cls(name, match.group("filter"), select, rule.get("actions") or [], error, where)

    def admits(self, message: Message) -> bool:
        """Whether the WHERE clause (if any) holds for the message."""
        return self.where is None or self.where(message, _json(message.payload))

    def output(self, message: Message) -> bytes:
        """What the SQL makes of the message; a binary payload with fields added fails, as in IoT."""
        if len(self.select) == 1 and self.select[0][0] is None:
            return message.payload  # SELECT *: the payload as it came, any bytes
        body = _json(message.payload)
        out: dict[str, Any] = {}
        for alias, expression in self.select:
            if alias is None:
                if not isinstance(body, dict):
                    raise ValueError("SELECT * with added fields needs a JSON object payload")
                out.update(body)
            else:
                out[alias] = expression(message, body)
        return json.dumps(out, separators=(",", ":")).encode()

    def substitute(self, template: str, message: Message) -> str:
        body = _json(message.payload)
        return TEMPLATE.sub(lambda m: str(_expression(m.group(1))(message, body)), template)


def _top_level(text: str) -> list[tuple[int, str]]:
    """The characters of `text` outside parentheses and string literals, with their positions."""
    found, depth, quoted = [], 0, False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted:
            depth += char == "("
            depth -= char == ")"
            if depth == 0 and char not in "()":
                found.append((index, char))
    return found


def _split(text: str) -> list[str]:
    """A SELECT list or argument list split on top-level commas."""
    commas = [i for i, char in _top_level(text) if char == ","]
    return [text[start + 1:end] for start, end in zip([-1, *commas], [*commas, len(text)], strict=True)]


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class Figures:
    matched: int = 0
    put: int = 0
    failed: int = 0
    errors_logged: int = 0
    error_action_failed: int = 0  # lost: neither the action nor the error action could write it
    sql_failed: int = 0
    # The WHERE clause did not hold: no action, no error action. AWS has no metric of its own for it: such a
    # message shows only in TopicMatch (counted), without a Success, Failure or ParseError.
    dropped_by_where: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # IoT Core's rule metrics (namespace AWS/IoT) by (metric, its dimensions): TopicMatch and
    # ParseError by rule, Success and Failure by rule and action type
    metrics: Counter[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=Counter)

    def add(self, rule: str, metric: str | None = None, action: str | None = None, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
            if metric:
                dimensions = (("RuleName", rule), *((("ActionType", action),) if action else ()))
                self.metrics[(metric, dimensions)] += 1

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("matched", "put", "failed", "errors_logged", "error_action_failed",
                                              "sql_failed", "dropped_by_where")}


class RulesEngine:
    """Applies the account's deployed topic rules (boto3 clients made by `client(service, credentials)`)."""

    def __init__(self, client: Callable[..., Any], refresh_s: float = 5.0) -> None:
        self.client = client
        self.iot = client("iot")
        self.refresh_s = refresh_s
        self.rules: dict[str, Rule] = {}
        self.rule_arns: dict[str, str] = {}  # sent as aws:SourceArn when IoT assumes a rule's role
        self.loaded_at = 0.0
        self.figures = Figures()
        self.lanes = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rules-{i}") for i in range(LANES)]
        self._clients: dict[tuple[str, str, str], tuple[float, Any]] = {}  # (service, role, rule)
        self._lock = threading.Lock()

    def load(self) -> None:
        found, arns = {}, {}
        for listed in self.iot.list_topic_rules().get("rules", []):
            rule = self.iot.get_topic_rule(ruleName=listed["ruleName"])["rule"]
            if not rule.get("ruleDisabled"):
                found[listed["ruleName"]] = Rule.parse(listed["ruleName"], rule)
                arns[listed["ruleName"]] = listed.get("ruleArn", "")
        self.rules, self.rule_arns, self.loaded_at = found, arns, time.monotonic()

    def submit(self, topic: str, payload: bytes, client_id: str, principal: str) -> list[Future[None]]:
        """Apply every rule the message reaches; returns when each is applied (futures)."""
        if time.monotonic() - self.loaded_at > self.refresh_s:
            self.load()
        named = None
        if topic.startswith(BASIC_INGEST):
            named, _, topic = topic[len(BASIC_INGEST):].partition("/")
        message = Message(topic, payload, client_id, principal, int(time.time() * 1000))
        rules = [self.rules[named]] if named in self.rules else [] if named else [
            r for r in self.rules.values() if topic_matches(r.topic_filter, topic)]
        futures = []
        for rule in rules:
            if named is None or topic_matches(rule.topic_filter, topic):
                self.figures.add(rule.name, "TopicMatch", matched=1)
                lane = self.lanes[zlib.crc32(topic.encode()) % LANES]
                futures.append(lane.submit(self._apply, rule, message))
        return futures

    def _apply(self, rule: Rule, message: Message) -> None:
        if not rule.admits(message):
            self.figures.add(rule.name, dropped_by_where=1)
            return
        try:
            data = rule.output(message)
        except ValueError:
            # IoT: a ParseError metric and a log line; no action, no error action
            self.figures.add(rule.name, "ParseError", sql_failed=1)
            return
        failures = []
        for action in rule.actions:
            kinesis = action["kinesis"]
            key = rule.substitute(kinesis.get("partitionKey") or "${newuuid()}", message)
            try:
                self._as_role("kinesis", kinesis["roleArn"], rule.name).put_record(
                    StreamName=kinesis["streamName"], Data=data, PartitionKey=key)
                self.figures.add(rule.name, "Success", "Kinesis", put=1)
            except Exception as error:  # every failure goes to the error action, as in IoT
                self.figures.add(rule.name, "Failure", "Kinesis", failed=1)
                failures.append({"failedAction": "KinesisAction", "failedResource": kinesis["streamName"],
                                 "errorMessage": f"Failed to put record: {error}"})
        if failures and rule.error_action:
            try:
                self._error(rule, message, failures)
            except Exception:  # the message is lost, as on AWS (where only IoT's own log says so): say it here
                self.figures.add(rule.name, error_action_failed=1)
                logger.warning("rule %s: the error action failed too; a message from %s on %s is lost", rule.name,
                               message.client_id, message.topic, exc_info=True)

    def _error(self, rule: Rule, message: Message, failures: list[dict[str, str]]) -> None:
        target = rule.error_action["cloudwatchLogs"]  # type: ignore[index]
        logs = self._as_role("logs", target["roleArn"], rule.name)
        body = {"ruleName": rule.name, "topic": message.topic, "cloudwatchTraceId": str(uuid.uuid4()),
                "clientId": message.client_id,
                "base64OriginalPayload": base64.b64encode(message.payload).decode(), "failures": failures}
        stream = rule.name
        try:
            logs.create_log_stream(logGroupName=target["logGroupName"], logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.put_log_events(logGroupName=target["logGroupName"], logStreamName=stream,
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(body)}])
        self.figures.add(rule.name, errors_logged=1)

    def _as_role(self, service: str, role_arn: str, rule: str) -> Any:
        """A client of `service` with the role's credentials, as IoT assumes it for the rule (STS
        evaluates the role's trust policy for iot.amazonaws.com, with the rule's account and ARN): one
        session kept for most of its hour (a boto3 client per call would cost more than the call)."""
        with self._lock:
            cached = self._clients.get((service, role_arn, rule))
            if cached and time.monotonic() - cached[0] < 3000:
                return cached[1]
            keys = assume_as(self.client("sts"), IOT, role_arn, f"iot-rule-{rule}",
                             source_arn=self.rule_arns.get(rule, ""))
            client = self.client(service, {"aws_access_key_id": keys["AWS_ACCESS_KEY_ID"],
                                           "aws_secret_access_key": keys["AWS_SECRET_ACCESS_KEY"],
                                           "aws_session_token": keys["AWS_SESSION_TOKEN"]})
            self._clients[(service, role_arn, rule)] = (time.monotonic(), client)
            return client

    def close(self) -> None:
        for lane in self.lanes:
            lane.shutdown(wait=True)
