"""What TempURL and FormPost signatures share: the keys, the digests and the HMACs (Swift's
``common/digest.py`` and ``tempurl.get_tempurl_keys_from_metadata``).

Both features sign with the same secrets, kept as metadata: two on the account
(``X-Account-Meta-Temp-URL-Key``, ``-Key-2``) and two on each container
(``X-Container-Meta-Temp-URL-Key``, ``-Key-2``). A signature is the HMAC of a text that the
client and the proxy both build, sent in one of two forms::

    0123abcd...                  hex; its length names the digest (40 sha1, 64 sha256,
                                 128 sha512)
    sha512:<base64>              the digest by name, standard or URL-safe base64,
                                 padding optional

Only the operator's ``allowed_digests`` count (sha1 is allowed but deprecated, as in Swift).
Comparisons take constant time.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pocketstack.objectstore.exceptions import HTTPUnauthorized
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import account_info, container_info
from pocketstack.objectstore.proxy.request import Authorizer, Request, wsgi_to_str

SUPPORTED_DIGESTS = ("sha1", "sha256", "sha512")
DEPRECATED_DIGESTS = frozenset({"sha1"})
HEX_LENGTH2DIGEST = {40: "sha1", 64: "sha256", 128: "sha512"}
BASE64_CHARS = frozenset(string.ascii_letters + string.digits + "+/")
# The metadata keys (after the X-<Type>-Meta- prefix) that hold signing secrets.
KEY_NAMES = ("temp-url-key", "temp-url-key-2")


class KeyScope(enum.Enum):
    """What a key may grant: anything in its account, or only in its container."""

    ACCOUNT = "account"
    CONTAINER = "container"


@dataclass(frozen=True)
class SigningKey:
    secret: bytes
    scope: KeyScope


@dataclass(frozen=True)
class Digests:
    """The digests signatures may use, and which of them are deprecated."""

    allowed: tuple[str, ...]
    deprecated: tuple[str, ...]

    def info(self) -> dict[str, Any]:
        """The ``/info`` entries Swift registers for them."""
        section: dict[str, Any] = {"allowed_digests": list(self.allowed)}
        if self.deprecated:
            section["deprecated_digests"] = list(self.deprecated)
        return section


def allowed_digests(configured: Iterable[str]) -> Digests:
    """The configured digests Swift supports (all of them when none is configured);
    ValueError when none is left, as Swift refuses to start then."""
    wanted = {name.lower() for name in configured} or set(SUPPORTED_DIGESTS)
    allowed = sorted(wanted & set(SUPPORTED_DIGESTS))
    if not allowed:
        raise ValueError("No valid digest algorithms are configured")
    return Digests(tuple(allowed), tuple(sorted(set(allowed) & DEPRECATED_DIGESTS)))


def parse_signature(value: str) -> tuple[str, str]:
    """(digest name, hex signature) of a client's signature; ValueError when it is neither
    hex of a known length nor ``<digest>:<base64>``."""
    if ":" in value:
        name, encoded = value.split(":", 1)
        if ("-" in encoded or "_" in encoded) and not ("+" in encoded or "/" in encoded):
            encoded = encoded.replace("-", "+").replace("_", "/")  # URL-safe base64
        return name, _strict_b64decode(encoded).hex()
    try:
        binascii.unhexlify(value)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("signature is not hex") from exc
    digest = HEX_LENGTH2DIGEST.get(len(value))
    if digest is None:
        raise ValueError("bad signature length")
    return digest, value


def _strict_b64decode(value: str) -> bytes:
    """Base64 that refuses stray characters (the stdlib drops them silently)."""
    if any(c not in BASE64_CHARS for c in value.strip("=")):
        raise ValueError("not base64")
    try:
        return base64.b64decode(value + "==")
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


def hmac_hex(secret: bytes, message: bytes, digest: str) -> str:
    return hmac.new(secret, message, digest).hexdigest()


def same_signature(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               expected.encode("ascii"))


def tempurl_message(method: str, expires: int, path: str, ip_range: str | None = None
                    ) -> bytes:
    """What a TempURL signs: ``[ip=<range>\\n]<METHOD>\\n<expires>\\n<path>`` (Swift's
    ``get_hmac``; the IP range comes first so that no path can forge it)."""
    parts = [method, str(expires), path]
    if ip_range:
        parts.insert(0, f"ip={ip_range}")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def keys_in(metadata: Mapping[str, str], kind: str, scope: KeyScope) -> list[SigningKey]:
    """The signing keys stored in an account's or container's metadata. Values are wire
    strings: the secret is the bytes the owner sent (UTF-8 text as the clients encode it)."""
    names = {f"x-{kind}-meta-{name}" for name in KEY_NAMES}
    return [SigningKey(wsgi_to_str(value).encode("utf-8", "surrogateescape"), scope)
            for key, value in sorted(metadata.items())
            if key.lower() in names and value]


async def signing_keys(ctx: ProxyContext, account: str, container: str | None
                       ) -> list[SigningKey]:
    """The account's keys, then the container's (none for missing entities)."""
    keys: list[SigningKey] = []
    info = await account_info(ctx, account)
    if info is not None:
        keys += keys_in(info.metadata, "account", KeyScope.ACCOUNT)
    if container:
        cinfo = await container_info(ctx, account, container)
        if cinfo is not None:
            keys += keys_in(cinfo.metadata, "container", KeyScope.CONTAINER)
    return keys


def authorize_within(account: str, container: str | None = None) -> Authorizer:
    """An authorization that allows requests in ``account`` (and ``container``) only
    (Swift's ``authorize_same_account`` / ``authorize_same_container``)."""

    async def authorize(req: Request) -> None:
        if req.account != account or (container is not None and req.container != container):
            raise HTTPUnauthorized()

    return authorize
