"""Pydantic wire models of the provenance manifest (``provenance/manifest.json``).

Frozen, ``extra="forbid"`` and float-free, so that what we serialise with RFC 8785 is exactly
what a verifier can re-read (RFC 8785 section 3.2.2.3: numbers must be exact IEEE doubles).
Every integer field is bounded below 2^53, which also lets ``jcs.canonical_json`` serialise a
validated manifest with the C encoder (tests/test_jcs.py keeps the schema to that). Times are
RFC 3339 strings in UTC. A JSON Schema generated from these models is committed at
``src/provenance/schema/manifest.schema.json``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MANIFEST_MEDIA_TYPE = "application/vnd.provenance.manifest+json; version=1"
SCHEMA_VERSION = 1

Sha256 = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")]
MAX_EXACT_INTEGER = 2**53 - 1  # the largest integer every IEEE double holds exactly
Size = Annotated[int, Field(ge=0, le=MAX_EXACT_INTEGER)]
Count = Annotated[int, Field(ge=0, le=MAX_EXACT_INTEGER)]
HttpStatus = Annotated[int, Field(ge=100, le=999)]  # three digits (RFC 9110 section 15)
Port = Annotated[int, Field(ge=0, le=65535)]

CaptureState = Literal["COMPLETE", "PARTIAL", "FAILED"]
Role = Literal["article", "requisite", "linked_source", "redirect"]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolInfo(Model):
    name: str
    version: str
    python: str
    platform: str
    dependencies: dict[str, str]


class CaptureOptions(Model):
    """How the capture was made, as the user asked for it (resolved defaults included)."""

    links: Literal["body", "none"]
    include: list[str]
    exclude: list[str]
    requisites: bool
    concurrency: Count
    per_host: Count
    connect_timeout_ms: Count
    read_timeout_ms: Count
    total_timeout_ms: Count
    max_redirects: Count
    max_bytes: Size
    max_links: Count
    max_decoded_bytes: Size = Field(description="most bytes inflated for text extraction")
    allow_private: bool = Field(
        description="non-global addresses allowed on hosts other than the article's")
    user_agent: str
    ca_bundle: str | None = None
    request_headers: list[str] = Field(
        default=[], description="names (never values) of --header fields, article host only")
    cookie_file: bool = Field(default=False, description="cookies from a cookies.txt were sent")
    keep_secrets: bool = Field(
        default=False, description="credentials were kept in the records (not redacted)")


class WarcLocation(Model):
    """Where a record lives: file path relative to the bundle root, id, offset and length."""

    file: str
    record_id: str
    offset: Size
    length: Size


class RedirectHop(Model):
    url: str
    status: HttpStatus | None = None
    location: str | None = None


class PageMetadata(Model):
    title: str | None = None
    authors: list[str] = []
    published: str | None = None
    canonical_url: str | None = None
    language: str | None = None
    site_name: str | None = None
    description: str | None = None


class Resource(Model):
    """One HTTP exchange (or one attempt that got no response)."""

    id: str
    url: str
    role: Role
    outcome: Literal["captured", "truncated", "failed", "skipped"] = Field(
        description="skipped: refused by the address guard before any connection")
    reason: str | None = None
    status: HttpStatus | None = None
    media_type: str | None = None
    bytes: Size | None = Field(
        default=None, description="entity body size, transfer coding removed")
    sha256: Sha256 | None = Field(
        default=None, description="entity body digest, transfer coding removed (WARC 1.1 6.3.2)")
    content_encoding: str | None = None
    transfer_encoding: str | None = None
    location: str | None = Field(default=None, description="redirect target, when a redirect")
    peer_ip: str | None = None
    fetched_at: Timestamp | None = None
    response: WarcLocation | None = None
    request: WarcLocation | None = None
    redacted_request_headers: list[str] | None = Field(
        default=None, description="request fields whose values the record does not keep")
    redacted_response_headers: list[str] | None = Field(
        default=None, description="response fields whose values the record does not keep")


class BodyLink(Model):
    """A link found inside the article body, and what became of it."""

    url: str
    text: str
    context: str
    outcome: Literal["captured", "failed", "skipped"]
    reason: str | None = None
    final_url: str | None = None
    resource: str | None = Field(default=None, description="id of the final resource")
    chain: list[str] = Field(default=[], description="ids of every hop, first to last")


class Certificate(Model):
    subject: str
    issuer: str
    not_before: str
    not_after: str
    sha256: Sha256


class TLSSession(Model):
    host: str
    port: Port
    version: str
    cipher: str
    certificates: list[Certificate]
    record: WarcLocation


class ArticleText(Model):
    record: WarcLocation
    bytes: Size
    sha256: Sha256
    media_type: str


class BundleFile(Model):
    path: str
    bytes: Size
    sha256: Sha256


class Signer(Model):
    fingerprint: str
    public_key: str
    namespace: str


LimitName = Literal["max_bytes", "total_timeout", "read_timeout", "connect_timeout",
                    "max_redirects", "max_links", "max_decoded_bytes", "max_markup",
                    "listed_links"]


class LimitHit(Model):
    """A configured limit that cut something short (the options record holds every value)."""

    limit: LimitName
    url: str
    resource: str | None = Field(default=None, description="id of the resource it cut")
    detail: str


class PreviousCapture(Model):
    """The capture of the same requested URL that this one follows in the same store.

    The newest one the catalog knew once this capture's requests had gone out (or when it
    ended, if it had no links to wait for). Each manifest names its predecessor by id and by
    the sha256 of its manifest bytes, so the captures of a URL form a hash-linked history
    (``provenance history URL``).
    """

    capture_id: str
    manifest_sha256: Sha256


class Manifest(Model):
    media_type: Literal["application/vnd.provenance.manifest+json; version=1"]
    schema_version: Literal[1]
    capture_id: str
    tool: ToolInfo
    started_at: Timestamp
    finished_at: Timestamp
    requested_url: str
    final_url: str | None = None
    redirect_chain: list[RedirectHop]
    state: CaptureState
    state_reason: str | None = None
    article_kind: Literal["html", "document", "none"]
    page: PageMetadata
    article_text: ArticleText | None = None
    options: CaptureOptions
    resources: list[Resource]
    links: list[BodyLink]
    limits_hit: list[LimitHit] = []
    tls: list[TLSSession]
    files: list[BundleFile]
    signer: Signer | None = None
    previous: PreviousCapture | None = None

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # Literal[1] matches by equality, and in Python True == 1: JSON true is not version 1.
        if isinstance(value, bool):
            raise ValueError("schema_version must be the integer 1")
        return value
