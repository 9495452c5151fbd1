"""Each status raises its own exception, under one base class, with the server's details decoded."""

from __future__ import annotations

import uuid

import grpc
import pytest

import credvault
from credvault import _transport
from conftest import VaultStack, unique

KEY = "sk-proj-" + "e" * 24


def test_invalid_argument_names_the_field_and_changes_nothing(client: credvault.Client) -> None:
    with pytest.raises(credvault.InvalidArgument) as caught:
        client.credentials.create(name="", type="openai", value=KEY)
    assert [v.field for v in caught.value.field_violations] == ["name"]
    assert caught.value.code == "INVALID_ARGUMENT" and "name" in str(caught.value)

    with pytest.raises(credvault.InvalidArgument) as caught:
        client.credentials.create(name="db", type="postgresql", value="postgresql://u:p@h:99999/db")
    assert caught.value.field_violations[0].field == "value.secret"

    # The category must be the type's.
    with pytest.raises(credvault.InvalidArgument) as caught:
        client.credentials.create(name="wrong", category="speech", type="openai", value=KEY)
    assert caught.value.field_violations[0].field == "category"
    assert list(client.credentials.list()) == []

    with pytest.raises(TypeError, match="value"):
        client.credentials.create(name="x", type="openai", value={"api_key": 42})  # type: ignore[dict-item]


def test_not_found_for_an_unknown_id_and_for_another_workspaces_id(
    stack: VaultStack, client: credvault.Client
) -> None:
    never = str(uuid.uuid4())
    with pytest.raises(credvault.NotFound) as unknown:
        client.credentials.get(credential_id=never)
    other = credvault.Client(stack.grpc, token=stack.token_for("elsewhere"))
    theirs = other.credentials.create(name=unique("theirs"), type="openai", value=KEY)
    with pytest.raises(credvault.NotFound) as foreign:
        client.credentials.get(credential_id=theirs.id)
    # No existence oracle: the same answer, but for the id.
    assert str(foreign.value).replace(theirs.id, "ID") == str(unknown.value).replace(never, "ID")
    with pytest.raises(credvault.NotFound):
        client.access(theirs.id)
    other.close()


def test_already_exists_and_etag_mismatch(client: credvault.Client) -> None:
    first = client.credentials.create(name="Shared name", type="openai", value=KEY)
    with pytest.raises(credvault.AlreadyExists):
        client.credentials.create(name="Shared name", type="openai", value=KEY)
    client.credentials.update(first.id, description="changed", etag=first.etag)
    with pytest.raises(credvault.EtagMismatch) as caught:
        client.credentials.update(first.id, description="lost update", etag=first.etag)
    assert caught.value.code == "ABORTED"
    assert client.credentials.get(first.id).description == "changed"
    with pytest.raises(credvault.EtagMismatch):
        client.credentials.delete(first.id, etag=first.etag)


def test_permission_denied_and_unauthenticated(stack: VaultStack, workspace: str) -> None:
    reader = credvault.Client(stack.grpc, token=stack.token_for(workspace, "read"))
    assert list(reader.credentials.list()) == []
    with pytest.raises(credvault.PermissionDenied):
        reader.credentials.create(name="nope", type="openai", value=KEY)
    with pytest.raises(credvault.PermissionDenied):
        reader.access(type="openai")
    stranger = credvault.Client(stack.grpc, token="not-a-jwt")
    with pytest.raises(credvault.Unauthenticated):
        list(stranger.credentials.list())
    for c in (reader, stranger):
        c.close()


def test_failed_precondition_without_a_default(client: credvault.Client) -> None:
    client.credentials.create(name="not default", type="anthropic", value="sk-ant-" + "a" * 24)
    with pytest.raises(credvault.FailedPrecondition) as caught:
        client.access(type="anthropic")
    # The refused access is audited under the request id the error carries.
    request_id = caught.value.request_id
    assert request_id and len(request_id) == 24
    refused = [e for e in client.audit_events.list() if e.action == "access"]
    assert [(e.request_id, e.outcome, e.status_code) for e in refused] == [
        (request_id, "failed", "FAILED_PRECONDITION")
    ]


def test_resource_exhausted_carries_the_retry_delay(stack: VaultStack, workspace: str) -> None:
    # A principal of its own: the probe rate limit (60 a minute) is per token subject.
    token = stack.token_for(workspace, "read,write", subject=f"burst-{workspace}")
    with credvault.Client(stack.grpc, token=token) as client:
        with pytest.raises(credvault.ResourceExhausted) as caught:
            for _ in range(100):
                client.credentials.test(type="postgresql", value="postgresql://u:p@127.0.0.1:9/db")
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_unavailable_after_the_retries_and_deadline_exceeded(client: credvault.Client) -> None:
    with credvault.Client("127.0.0.1:9", token="t", max_retries=1) as down:
        with pytest.raises(credvault.Unavailable):
            down.credentials.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(credvault.DeadlineExceeded):
        client.credentials.get(str(uuid.uuid4()), timeout=1e-6)


def test_out_of_range_for_a_request_over_the_limit(client: credvault.Client) -> None:
    with pytest.raises(credvault.OutOfRange):
        client.credentials.create(name="big", type="openai", value="k" * (300 * 1024))


def test_data_loss_when_a_stored_row_was_altered(stack: VaultStack, client: credvault.Client) -> None:
    created = client.credentials.create(name=unique("tampered"), type="openai", value=KEY)
    assert stack.command(f"tamper {created.id}") == {"ok": True, "rows": 1}
    with pytest.raises(credvault.DataLoss) as caught:
        client.access(created.id)
    assert "integrity check" in str(caught.value) and KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("code", "cls"),
    [(grpc.StatusCode.INTERNAL, credvault.Internal), (grpc.StatusCode.CANCELLED, credvault.Cancelled),
     (grpc.StatusCode.UNIMPLEMENTED, credvault.Unimplemented), (grpc.StatusCode.UNKNOWN, credvault.Unknown),
     (grpc.StatusCode.DATA_LOSS, credvault.DataLoss), (grpc.StatusCode.OUT_OF_RANGE, credvault.OutOfRange)],
)
def test_the_statuses_no_test_provokes_map_to_their_class(code: grpc.StatusCode, cls: type) -> None:
    error = credvault.errors.from_status(code, "", ())
    assert type(error) is cls and error.message == code.name


def test_every_error_is_a_vault_error() -> None:
    for name in credvault.__all__:
        cls = getattr(credvault, name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            assert issubclass(cls, credvault.VaultError), name
    with pytest.raises(credvault.ConfigurationError, match="CREDVAULT_TOKEN"):
        credvault.Client("localhost:1", token="")


class _Failure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name

    def trailing_metadata(self) -> tuple[()]:
        return ()


@pytest.mark.parametrize(
    ("code", "calls"),
    [(grpc.StatusCode.UNAVAILABLE, 4), (grpc.StatusCode.NOT_FOUND, 1),
     (grpc.StatusCode.RESOURCE_EXHAUSTED, 1), (grpc.StatusCode.DEADLINE_EXCEEDED, 1)],
)
def test_only_unavailable_is_retried(code: grpc.StatusCode, calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_transport.time, "sleep", lambda _: None)
    settings = _transport.Settings.resolve("localhost:1", "t", None, None, 1.0, 3)
    seen = []

    def method(request: object, **_: object) -> None:
        seen.append(request)
        raise _Failure(code)

    with pytest.raises(credvault.VaultError):
        _transport.call(settings, method, "req", None)
    assert len(seen) == calls


def test_backoff_doubles_to_its_cap_with_a_floor() -> None:
    for attempt, delay in enumerate([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        waits = [_transport.backoff(attempt) for _ in range(200)]
        assert delay / 2 <= min(waits) and max(waits) <= delay
