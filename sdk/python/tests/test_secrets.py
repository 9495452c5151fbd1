"""The plaintext never shows up where it was not asked for: reprs, logs, errors, pickles."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import traceback
import uuid

import pytest

import credvault
from conftest import unique


def test_a_secret_prints_redacted_and_reveals_on_request(
    client: credvault.Client, caplog: pytest.LogCaptureFixture
) -> None:
    marker = f"sk-MARKER-{uuid.uuid4().hex}"
    created = client.credentials.create(name=unique("marked"), type="openai", value=marker, make_default=True)
    secret = client.access(type="openai")
    assert secret.reveal() == marker and secret.credential.id == created.id

    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret, repr(secret.fields),
             str(secret.fields), repr(created), repr(secret.credential), repr(client),
             repr(client.key_provider("openai"))]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("agent").info("key %s %r fields %s", secret, secret, secret.fields)
    shown.append(caplog.text)
    for text in shown:
        assert marker not in text and "MARKER" not in text, text
    assert "**********" in str(secret) and created.id in repr(secret)

    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        copy.deepcopy(secret)
    with pytest.raises(TypeError):
        json.dumps(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret.fields)


def test_multi_field_values_expose_fields_but_print_none(client: credvault.Client) -> None:
    marker = f"MARKER{uuid.uuid4().hex}"
    created = client.credentials.create(
        name=unique("bedrock"),
        category="llm",
        type="bedrock",
        value={"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": marker, "region": "us-east-1"},
    )
    assert "MARKER" not in created.masked_content and "us-east-1" in created.masked_content
    secret = client.access(created.id)
    assert secret.reveal() == marker  # the primary secret: secret_access_key
    assert dict(secret.fields) == {
        "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": marker, "region": "us-east-1"
    }
    assert secret.field("region") == "us-east-1"
    assert "MARKER" not in repr(secret.fields) and "AKIA" not in repr(secret.fields)
    with pytest.raises(KeyError):
        secret.field("session_token")


def test_errors_never_carry_the_value(client: credvault.Client) -> None:
    marker = f"sk-MARKER-{uuid.uuid4().hex}"
    name = unique("dup")
    client.credentials.create(name=name, type="openai", value=marker)
    failures = []
    for attempt in (
        lambda: client.credentials.create(name=name, type="openai", value=marker),  # AlreadyExists
        lambda: client.credentials.create(name=unique("ws"), type="openai", value=marker + " \n"),
        lambda: client.credentials.create(name=unique("pg"), type="postgresql",
                                          value=f"postgresql://u:{marker}@h@x/db"),
        lambda: client.credentials.test(type="openai", value=marker + "\x00"),
    ):
        with pytest.raises(credvault.VaultError) as caught:
            attempt()
        failures.append(caught.value)
    assert [type(f) for f in failures] == [credvault.AlreadyExists] + [credvault.InvalidArgument] * 3
    for failure in failures:
        text = str(failure) + repr(failure) + "".join(traceback.format_exception(failure))
        text += repr(failure.details)
        assert "MARKER" not in text, text
