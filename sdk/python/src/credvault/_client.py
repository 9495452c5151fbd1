"""``Client`` and ``AsyncClient``: the vault's calls as resource namespaces with keyword arguments.

Each method builds its request in ``_convert`` and sends it through ``_transport`` (metadata,
deadline, retries, errors); the sync and async classes differ only in how they wait.
"""

from __future__ import annotations

import builtins
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Generic,
    Iterator,
    Optional,
    Sequence,
    TypeVar,
)

from . import _convert as convert
from ._gen.credentials.v1 import access_service_pb2_grpc as access_grpc
from ._gen.credentials.v1 import credentials_service_pb2_grpc as service_grpc
from ._transport import DEFAULT_TIMEOUT, PROBE_TIMEOUT, TLS, Settings, acall, call
from .key_provider import AsyncKeyProvider, KeyProvider
from .secret import Secret
from .types import (
    AuditEvent,
    Credential,
    CredentialType,
    Schema,
    SchemaDiscovery,
    ValidationResult,
)

T = TypeVar("T")


class Page(Generic[T]):
    """One page of a listing."""

    def __init__(self, items: list[T], next_page_token: str) -> None:
        self.items = items
        self.next_page_token = next_page_token
        """Empty on the last page."""

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Pager(Generic[T]):
    """Iterates over every item of a listing, fetching the next page when one runs out."""

    def __init__(self, fetch: Callable[[str], Page[T]]) -> None:
        self._fetch = fetch

    @property
    def pages(self) -> Iterator[Page[T]]:
        """The pages themselves, for callers that want the page boundaries."""
        token = ""
        while True:
            page = self._fetch(token)
            yield page
            token = page.next_page_token
            if not token:
                return

    def __iter__(self) -> Iterator[T]:
        for page in self.pages:
            yield from page


class AsyncPager(Generic[T]):
    """The async form of :class:`Pager`: ``async for item in pager``."""

    def __init__(self, fetch: Callable[[str], Any]) -> None:
        self._fetch = fetch

    @property
    async def pages(self) -> AsyncIterator[Page[T]]:
        token = ""
        while True:
            page: Page[T] = await self._fetch(token)
            yield page
            token = page.next_page_token
            if not token:
                return

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages:
            for item in page:
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()


def _ws(settings: Settings, workspace: Optional[str]) -> str:
    return settings.workspace if workspace is None else workspace


class Credentials:
    """``client.credentials``: create, read, change, validate and discover credentials."""

    def __init__(self, settings: Settings, stub: Any) -> None:
        self._s = settings
        self._stub = stub

    def create(
        self,
        *,
        name: str,
        type: str,
        value: convert.Value,
        category: Optional[str] = None,
        description: Optional[str] = None,
        make_default: bool = False,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Credential:
        """Stores a new credential. ``value`` is the secret string, or a dict of its fields;
        ``category``, when given, must be the type's (``llm``, ``data_warehouse``, ...)."""
        request = convert.create_request(
            _ws(self._s, workspace), name, type, value, category, description, make_default
        )
        return convert.credential(call(self._s, self._stub.CreateCredential, request, timeout).credential)

    def get(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> Credential:
        """A credential's metadata (deleted ones too, with ``deleted_at`` set)."""
        request = convert.get_request(_ws(self._s, workspace), credential_id)
        return convert.credential(call(self._s, self._stub.GetCredential, request, timeout).credential)

    def list(
        self,
        *,
        type: Optional[str] = None,
        category: Optional[str] = None,
        show_deleted: bool = False,
        page_size: Optional[int] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Pager[Credential]:
        """Every credential matching the filters, newest first, following page tokens."""

        def fetch(token: str) -> Page[Credential]:
            request = convert.list_request(
                _ws(self._s, workspace), type, category, show_deleted, page_size, token
            )
            r = call(self._s, self._stub.ListCredentials, request, timeout)
            return Page([convert.credential(c) for c in r.credentials], r.next_page_token)

        return Pager(fetch)

    def update(
        self,
        credential_id: str,
        *,
        value: Optional[convert.Value] = None,
        name: Optional[str] = None,
        description: Optional[str] = None,
        etag: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Credential:
        """Changes what is given; the old value cannot be recovered. With ``etag``, refuses
        (``EtagMismatch``) if the credential changed since that etag was read."""
        request = convert.update_request(
            _ws(self._s, workspace), credential_id, name, description, value, etag
        )
        return convert.credential(call(self._s, self._stub.UpdateCredential, request, timeout).credential)

    def delete(
        self,
        credential_id: str,
        *,
        etag: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Credential:
        """Soft-deletes: the metadata stays readable, the secret is destroyed."""
        request = convert.delete_request(_ws(self._s, workspace), credential_id, etag)
        return convert.credential(call(self._s, self._stub.DeleteCredential, request, timeout).credential)

    def set_default(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> Credential:
        """Makes it its type's default; the previous default stops being one."""
        request = convert.set_default_request(_ws(self._s, workspace), credential_id)
        return convert.credential(call(self._s, self._stub.SetDefaultCredential, request, timeout).credential)

    def validate(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> ValidationResult:
        """Tries the stored credential against its target and stores the outcome on it."""
        request = convert.validate_request(_ws(self._s, workspace), credential_id)
        r = call(self._s, self._stub.ValidateCredential, request, timeout or PROBE_TIMEOUT)
        return convert.validation_result(r.result, r.credential)

    check_connection = validate
    """The same as :meth:`validate`."""

    def test(
        self,
        *,
        type: Optional[str] = None,
        value: Optional[convert.Value] = None,
        credential_id: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> ValidationResult:
        """Tries a proposed value (``type`` + ``value``), or a stored credential with only its
        secret fields replaced (``credential_id`` + ``value``); stores nothing."""
        request = convert.test_request(_ws(self._s, workspace), type, value, credential_id)
        r = call(self._s, self._stub.TestCredential, request, timeout or PROBE_TIMEOUT)
        return convert.validation_result(r.result, None)

    def discover_schema(
        self,
        credential_id: str,
        *,
        include_schemas: Sequence[str] = (),
        exclude_schemas: Sequence[str] = (),
        max_tables: Optional[int] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> SchemaDiscovery:
        """Reads a database credential's tables, columns and keys, and stores them."""
        request = convert.discover_request(
            _ws(self._s, workspace), credential_id, include_schemas, exclude_schemas, max_tables
        )
        r = call(self._s, self._stub.DiscoverSchema, request, timeout or PROBE_TIMEOUT)
        return convert.discovery(r)

    def get_schema(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> Schema:
        """The last discovered schema (``NotFound`` when none was discovered)."""
        request = convert.schema_request(_ws(self._s, workspace), credential_id)
        return convert.schema(call(self._s, self._stub.GetSchema, request, timeout))

    def types(self, *, category: Optional[str] = None, timeout: Optional[float] = None) -> builtins.list[CredentialType]:
        """The type catalogue: every type, its category and its value's fields."""
        request = convert.types_request(category)
        r = call(self._s, self._stub.ListCredentialTypes, request, timeout)
        return [convert.credential_type(t) for t in r.types]


class AuditEvents:
    """``client.audit_events``: the workspace's audit log."""

    def __init__(self, settings: Settings, stub: Any) -> None:
        self._s = settings
        self._stub = stub

    def list(
        self,
        *,
        credential_id: Optional[str] = None,
        page_size: Optional[int] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Pager[AuditEvent]:
        """Every event of the workspace (or of one credential), newest first."""

        def fetch(token: str) -> Page[AuditEvent]:
            request = convert.audit_request(_ws(self._s, workspace), credential_id, page_size, token)
            r = call(self._s, self._stub.ListAuditEvents, request, timeout)
            return Page([convert.audit_event(e) for e in r.events], r.next_page_token)

        return Pager(fetch)


class Client:
    """A connection to the vault.

    ``Client("vault.internal:50051", token=...)``; without arguments it reads
    ``CREDVAULT_TARGET`` (default ``localhost:50051``), ``CREDVAULT_TOKEN`` and
    ``CREDVAULT_WORKSPACE``. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        target: Optional[str] = None,
        *,
        token: Optional[str] = None,
        workspace: Optional[str] = None,
        tls: TLS = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
    ) -> None:
        self._settings = Settings.resolve(target, token, workspace, tls, timeout, max_retries)
        self._channel = self._settings.channel()
        stub = service_grpc.CredentialsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._access = access_grpc.AccessServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self.credentials = Credentials(self._settings, stub)
        """Create, read, change, validate and discover credentials."""
        self.audit_events = AuditEvents(self._settings, stub)
        """The workspace's audit log."""

    def access(
        self,
        id: Optional[str] = None,
        *,
        type: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Secret:
        """The plaintext of a credential (by ``id``) or of its type's default (``type=``).
        Needs the ``access`` permission; every call is audited."""
        request = convert.access_request(_ws(self._settings, workspace), id, type)
        r = call(self._settings, self._access.AccessCredential, request, timeout)
        return Secret(r.secret, r.fields, convert.credential(r.credential))

    def key_provider(
        self,
        type: Optional[str] = None,
        *,
        credential_id: Optional[str] = None,
        ttl: float = 60.0,
        workspace: Optional[str] = None,
    ) -> KeyProvider:
        """A callable returning the current key of ``type``'s default (or of ``credential_id``),
        cached for ``ttl`` seconds: ``ChatOpenAI(api_key=client.key_provider("openai"))``."""
        convert.access_request("", credential_id, type)  # exactly one selector
        return KeyProvider(
            lambda: self.access(credential_id, type=type, workspace=workspace).reveal(), ttl
        )

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self._settings
        return f"Client(target={s.target!r}, workspace={s.workspace!r}, tls={s.tls})"


class AsyncCredentials:
    """``client.credentials`` of :class:`AsyncClient`: the same calls, awaited."""

    def __init__(self, settings: Settings, stub: Any) -> None:
        self._s = settings
        self._stub = stub

    async def create(
        self,
        *,
        name: str,
        type: str,
        value: convert.Value,
        category: Optional[str] = None,
        description: Optional[str] = None,
        make_default: bool = False,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Credential:
        """See :meth:`Credentials.create`."""
        request = convert.create_request(
            _ws(self._s, workspace), name, type, value, category, description, make_default
        )
        r = await acall(self._s, self._stub.CreateCredential, request, timeout)
        return convert.credential(r.credential)

    async def get(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> Credential:
        """See :meth:`Credentials.get`."""
        request = convert.get_request(_ws(self._s, workspace), credential_id)
        r = await acall(self._s, self._stub.GetCredential, request, timeout)
        return convert.credential(r.credential)

    def list(
        self,
        *,
        type: Optional[str] = None,
        category: Optional[str] = None,
        show_deleted: bool = False,
        page_size: Optional[int] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> AsyncPager[Credential]:
        """See :meth:`Credentials.list`; iterate with ``async for``."""

        async def fetch(token: str) -> Page[Credential]:
            request = convert.list_request(
                _ws(self._s, workspace), type, category, show_deleted, page_size, token
            )
            r = await acall(self._s, self._stub.ListCredentials, request, timeout)
            return Page([convert.credential(c) for c in r.credentials], r.next_page_token)

        return AsyncPager(fetch)

    async def update(
        self,
        credential_id: str,
        *,
        value: Optional[convert.Value] = None,
        name: Optional[str] = None,
        description: Optional[str] = None,
        etag: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Credential:
        """See :meth:`Credentials.update`."""
        request = convert.update_request(
            _ws(self._s, workspace), credential_id, name, description, value, etag
        )
        r = await acall(self._s, self._stub.UpdateCredential, request, timeout)
        return convert.credential(r.credential)

    async def delete(
        self,
        credential_id: str,
        *,
        etag: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Credential:
        """See :meth:`Credentials.delete`."""
        request = convert.delete_request(_ws(self._s, workspace), credential_id, etag)
        r = await acall(self._s, self._stub.DeleteCredential, request, timeout)
        return convert.credential(r.credential)

    async def set_default(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> Credential:
        """See :meth:`Credentials.set_default`."""
        request = convert.set_default_request(_ws(self._s, workspace), credential_id)
        r = await acall(self._s, self._stub.SetDefaultCredential, request, timeout)
        return convert.credential(r.credential)

    async def validate(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> ValidationResult:
        """See :meth:`Credentials.validate`."""
        request = convert.validate_request(_ws(self._s, workspace), credential_id)
        r = await acall(self._s, self._stub.ValidateCredential, request, timeout or PROBE_TIMEOUT)
        return convert.validation_result(r.result, r.credential)

    check_connection = validate
    """The same as :meth:`validate`."""

    async def test(
        self,
        *,
        type: Optional[str] = None,
        value: Optional[convert.Value] = None,
        credential_id: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> ValidationResult:
        """See :meth:`Credentials.test`."""
        request = convert.test_request(_ws(self._s, workspace), type, value, credential_id)
        r = await acall(self._s, self._stub.TestCredential, request, timeout or PROBE_TIMEOUT)
        return convert.validation_result(r.result, None)

    async def discover_schema(
        self,
        credential_id: str,
        *,
        include_schemas: Sequence[str] = (),
        exclude_schemas: Sequence[str] = (),
        max_tables: Optional[int] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> SchemaDiscovery:
        """See :meth:`Credentials.discover_schema`."""
        request = convert.discover_request(
            _ws(self._s, workspace), credential_id, include_schemas, exclude_schemas, max_tables
        )
        r = await acall(self._s, self._stub.DiscoverSchema, request, timeout or PROBE_TIMEOUT)
        return convert.discovery(r)

    async def get_schema(
        self, credential_id: str, *, workspace: Optional[str] = None, timeout: Optional[float] = None
    ) -> Schema:
        """See :meth:`Credentials.get_schema`."""
        request = convert.schema_request(_ws(self._s, workspace), credential_id)
        return convert.schema(await acall(self._s, self._stub.GetSchema, request, timeout))

    async def types(
        self, *, category: Optional[str] = None, timeout: Optional[float] = None
    ) -> builtins.list[CredentialType]:
        """See :meth:`Credentials.types`."""
        request = convert.types_request(category)
        r = await acall(self._s, self._stub.ListCredentialTypes, request, timeout)
        return [convert.credential_type(t) for t in r.types]


class AsyncAuditEvents:
    """``client.audit_events`` of :class:`AsyncClient`."""

    def __init__(self, settings: Settings, stub: Any) -> None:
        self._s = settings
        self._stub = stub

    def list(
        self,
        *,
        credential_id: Optional[str] = None,
        page_size: Optional[int] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> AsyncPager[AuditEvent]:
        """See :meth:`AuditEvents.list`."""

        async def fetch(token: str) -> Page[AuditEvent]:
            request = convert.audit_request(_ws(self._s, workspace), credential_id, page_size, token)
            r = await acall(self._s, self._stub.ListAuditEvents, request, timeout)
            return Page([convert.audit_event(e) for e in r.events], r.next_page_token)

        return AsyncPager(fetch)


class AsyncClient:
    """The asyncio form of :class:`Client`: ``async with AsyncClient(...) as client``."""

    def __init__(
        self,
        target: Optional[str] = None,
        *,
        token: Optional[str] = None,
        workspace: Optional[str] = None,
        tls: TLS = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
    ) -> None:
        self._settings = Settings.resolve(target, token, workspace, tls, timeout, max_retries)
        self._channel = self._settings.aio_channel()
        stub = service_grpc.CredentialsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._access = access_grpc.AccessServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self.credentials = AsyncCredentials(self._settings, stub)
        """Create, read, change, validate and discover credentials."""
        self.audit_events = AsyncAuditEvents(self._settings, stub)
        """The workspace's audit log."""

    async def access(
        self,
        id: Optional[str] = None,
        *,
        type: Optional[str] = None,
        workspace: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Secret:
        """See :meth:`Client.access`."""
        request = convert.access_request(_ws(self._settings, workspace), id, type)
        r = await acall(self._settings, self._access.AccessCredential, request, timeout)
        return Secret(r.secret, r.fields, convert.credential(r.credential))

    def key_provider(
        self,
        type: Optional[str] = None,
        *,
        credential_id: Optional[str] = None,
        ttl: float = 60.0,
        workspace: Optional[str] = None,
    ) -> AsyncKeyProvider:
        """An async callable returning the current key, cached for ``ttl`` seconds:
        ``AsyncOpenAI(api_key=client.key_provider("openai"))``."""
        convert.access_request("", credential_id, type)

        async def fetch() -> str:
            return (await self.access(credential_id, type=type, workspace=workspace)).reveal()

        return AsyncKeyProvider(fetch, ttl)

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        s = self._settings
        return f"AsyncClient(target={s.target!r}, workspace={s.workspace!r}, tls={s.tls})"
