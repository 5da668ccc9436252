"""The capture catalog: a SQLite index of the bundles in an archive store.

The bundles are the truth; ``<store>/catalog.sqlite`` only makes finding them fast, and can
always be rebuilt from them (``provenance reindex``). It is kept honest three ways:

* Every capture adds its row (``record_capture``) after its bundle is committed.
* Every reading compares the store's bundle directory names with the rows (one directory
  listing and one query) and indexes what is missing / drops rows whose bundle is gone, so a
  capture killed between committing its bundle and recording it is still found, and a bundle
  copied in or deleted by hand is noticed. A bundle is indexed from its manifest alone, parsed
  but not verified (that is ``provenance verify``); a bundle whose manifest cannot be parsed is
  remembered in ``unindexed`` with the reason, and tried again when its manifest changes.
* A catalog that is unreadable, corrupt or of another schema version (``PRAGMA user_version``)
  is rebuilt from the bundles instead of failing.

Concurrency. SQLite in WAL mode with a busy timeout; every write is one ``BEGIN IMMEDIATE``
transaction, so captures running at once, or killed at any moment, never leave a torn
catalog. A rebuild writes a fresh database to a temporary file in the store and renames it
into place. Replacing a WAL database under an open connection would pair the new file with
the old write-ahead log, so every user of the catalog holds a shared ``flock`` on
``catalog.sqlite.lock`` while it has the database open, and the swap happens under the
exclusive lock, after the old database has been checkpointed out of WAL mode.

A store that cannot be written (read-only media) is still listed: the index is then built in
memory for the one command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from provenance.capture.urls import parse_fetchable, without_fragment
from provenance.errors import BundleFormatError, OperationalError, UsageError
from provenance.fsutil import fsync_directory, read_capped
from provenance.hashing import hash_bytes
from provenance.lockfile import create_held, remove_abandoned
from provenance.manifest import (
    MAX_MANIFEST_BYTES,
    LoadedManifest,
    load_manifest,
    parse_manifest,
)
from provenance.models import Manifest, PreviousCapture
from provenance.storage import MANIFEST_PATH
from provenance.timeutil import rfc3339

CATALOG_FILE = "catalog.sqlite"
LOCK_FILE = "catalog.sqlite.lock"
REBUILD_PREFIX = ".catalog-rebuild-"
#: ``PRAGMA user_version`` of the layout below; any other value means "rebuild".
CATALOG_VERSION = 1
BUSY_TIMEOUT_SECONDS = 60.0
_SIDE_FILES = ("-wal", "-shm", "-journal")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# SQLite primary result codes that mean "this file is not a sound catalog" (sqlite3.h).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_SCHEMA = """
CREATE TABLE captures (
    bundle TEXT PRIMARY KEY,          -- directory name in the store (normally the capture id)
    capture_id TEXT NOT NULL,
    requested_url TEXT NOT NULL,
    url_key TEXT NOT NULL,            -- requested URL normalised, see url_key()
    final_url TEXT,
    title TEXT,
    started_at TEXT NOT NULL,         -- as in the manifest
    started_utc TEXT NOT NULL,        -- the same, normalised for sorting and --since
    finished_at TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    signer TEXT,
    manifest_sha256 TEXT NOT NULL,    -- of the manifest bytes when indexed
    previous_id TEXT,
    previous_sha256 TEXT,
    resources INTEGER NOT NULL,
    links INTEGER NOT NULL,
    links_captured INTEGER NOT NULL,
    links_failed INTEGER NOT NULL
);
CREATE INDEX captures_by_id ON captures (capture_id);
CREATE INDEX captures_by_url ON captures (url_key, started_utc);
CREATE INDEX captures_by_time ON captures (started_utc);
CREATE TABLE unindexed (
    bundle TEXT PRIMARY KEY,          -- a directory whose manifest could not be parsed
    reason TEXT NOT NULL,
    signature TEXT NOT NULL           -- manifest size and mtime, to retry when it changes
);
"""
_COLUMNS = ("bundle", "capture_id", "requested_url", "url_key", "final_url", "title",
            "started_at", "started_utc", "finished_at", "state", "state_reason", "signer",
            "manifest_sha256", "previous_id", "previous_sha256", "resources", "links",
            "links_captured", "links_failed")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM captures"  # noqa: S608 (constant columns)
_INSERT = (f"INSERT OR REPLACE INTO captures ({', '.join(_COLUMNS)}) "  # noqa: S608
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# What the catalog holds


@dataclass(frozen=True)
class CatalogEntry:
    """One indexed capture, as its manifest described it when it was indexed."""

    bundle: Path
    capture_id: str
    requested_url: str
    url_key: str
    final_url: str | None
    title: str | None
    started_at: str
    finished_at: str
    state: str
    state_reason: str | None
    signer: str | None
    manifest_sha256: str
    previous: PreviousCapture | None
    resources: int
    links: int
    links_captured: int
    links_failed: int

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["bundle"] = str(self.bundle)
        data["previous"] = self.previous.model_dump() if self.previous else None
        return data


@dataclass(frozen=True)
class Unindexed:
    """A directory in the store that is not in the catalog, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class ReindexReport:
    catalog: Path
    indexed: int
    unindexed: tuple[Unindexed, ...]


@dataclass(frozen=True)
class _Row:
    values: tuple[object, ...]


@dataclass(frozen=True)
class _Skip:
    name: str
    reason: str
    signature: str


def url_key(url: str) -> str:
    """The form under which captures of "the same URL" are grouped.

    RFC 3986 section 6.2.2/6.2.3 normalisation as the fetcher applies it (scheme and host
    lowercased, IDNA host, percent-encoding of unsafe characters, empty path as ``/``), plus
    the default port dropped and the fragment removed.
    """
    try:
        parts = parse_fetchable(url)
    except UsageError:
        return without_fragment(url.strip())
    userinfo, at, host = parts.netloc.rpartition("@")
    suffix = f":{_DEFAULT_PORTS[parts.scheme]}"
    if host.endswith(suffix):
        host = host[: -len(suffix)]
    return parts._replace(netloc=f"{userinfo}{at}{host}").geturl()


def parse_since(text: str) -> datetime:
    """``--since``: a date (``YYYY-MM-DD``, midnight UTC) or an RFC 3339 time."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise UsageError(f"--since {text!r}: not a date (YYYY-MM-DD) or an RFC 3339 time "
                         "(2026-11-26T12:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _normalised_time(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return rfc3339(moment)


def _manifest_signature(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "absent"
    return f"{info.st_size}:{info.st_mtime_ns}"


def _row_for(name: str, manifest: Manifest, raw: bytes) -> _Row:
    links = manifest.links
    previous = manifest.previous
    return _Row((
        name, manifest.capture_id, manifest.requested_url, url_key(manifest.requested_url),
        manifest.final_url, manifest.page.title, manifest.started_at,
        _normalised_time(manifest.started_at), manifest.finished_at, manifest.state,
        manifest.state_reason, manifest.signer.fingerprint if manifest.signer else None,
        hash_bytes(raw), previous.capture_id if previous else None,
        previous.manifest_sha256 if previous else None, len(manifest.resources), len(links),
        sum(1 for link in links if link.outcome == "captured"),
        sum(1 for link in links if link.outcome == "failed"),
    ))


def _index_bundle(store: Path, name: str) -> _Row | _Skip:
    """A bundle's catalog row from its manifest (parsed, not verified), or why there is none."""
    path = store / name / MANIFEST_PATH
    signature = _manifest_signature(path)
    try:
        loaded = load_manifest(path)
    except BundleFormatError as error:
        reason = str(error).removeprefix(f"{path}: ")
        return _Skip(name=name, reason=reason, signature=signature)
    return _row_for(name, loaded.manifest, loaded.raw)


def _entry(store: Path, row: tuple[object, ...]) -> CatalogEntry:
    values = dict(zip(_COLUMNS, row, strict=True))

    def text(key: str) -> str:
        return str(values[key])

    def optional(key: str) -> str | None:
        value = values[key]
        return None if value is None else str(value)

    def number(key: str) -> int:
        value = values[key]
        return value if isinstance(value, int) else 0

    previous_id, previous_sha = optional("previous_id"), optional("previous_sha256")
    previous = None
    if previous_id is not None and previous_sha is not None:
        with contextlib.suppress(ValueError):
            previous = PreviousCapture(capture_id=previous_id, manifest_sha256=previous_sha)
    return CatalogEntry(
        bundle=store / text("bundle"), capture_id=text("capture_id"),
        requested_url=text("requested_url"), url_key=text("url_key"),
        final_url=optional("final_url"), title=optional("title"),
        started_at=text("started_at"), finished_at=text("finished_at"), state=text("state"),
        state_reason=optional("state_reason"), signer=optional("signer"),
        manifest_sha256=text("manifest_sha256"), previous=previous,
        resources=number("resources"), links=number("links"),
        links_captured=number("links_captured"), links_failed=number("links_failed"))


# ---------------------------------------------------------------------------------------------
# The database file: locking, opening, checking, rebuilding


class _CatalogBrokenError(Exception):
    """The catalog file is not a sound catalog of this version; rebuild it."""


def _is_corruption(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    message = str(error)
    return "malformed" in message or "not a database" in message or "no such table" in message


@contextlib.contextmanager
def _flock(store: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold ``catalog.sqlite.lock`` shared (using the catalog) or exclusive (replacing it)."""
    path = store / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _connect(path: Path | str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return connection


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _check(connection: sqlite3.Connection) -> None:
    """Raise ``_CatalogBrokenError`` unless this is a readable catalog of our schema version.

    A corrupt file raises ``sqlite3.DatabaseError``, which the caller turns into the same.
    """
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version != CATALOG_VERSION:
        raise _CatalogBrokenError(f"catalog schema version {version}, expected {CATALOG_VERSION}")
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"captures", "unindexed"} <= tables:
        raise _CatalogBrokenError("catalog tables are missing")
    connection.execute("SELECT count(*) FROM captures").fetchone()


def _open_checked(store: Path) -> sqlite3.Connection:
    """Open the catalog in WAL mode; ``_CatalogBrokenError`` if it is missing or unsound."""
    path = store / CATALOG_FILE
    if not path.is_file():
        raise _CatalogBrokenError("no catalog yet")
    connection = _connect(path)
    try:
        try:
            _check(connection)
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                _set_wal(connection)
            # NORMAL, not OFF, though OFF saves a capture 0.8 ms: the catalog answers which
            # capture a new one follows, and that answer is signed into its manifest, so a
            # catalog torn by a power cut must not pass for a sound one.
            connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as error:
            if _is_corruption(error):
                raise _CatalogBrokenError(f"catalog unreadable: {error}") from None
            raise
    except BaseException:
        connection.close()
        raise
    return connection


def _set_wal(connection: sqlite3.Connection) -> None:
    # Entering WAL needs a moment alone with the file; the busy handler is not always asked.
    for attempt in range(200):
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 199:
                raise
            time.sleep(0.05)


def _create_schema(connection: sqlite3.Connection) -> None:
    connection.executescript(_SCHEMA)
    connection.execute(f"PRAGMA user_version = {CATALOG_VERSION}")


def _bundle_names(store: Path) -> set[str]:
    """Directories in the store that may be bundles (``.tmp-*`` and other dot names are not)."""
    names = set()
    try:
        with os.scandir(store) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:  # not contextlib.suppress: a context per entry was a third of the listing
                    if entry.is_dir():
                        names.add(entry.name)
                except OSError:
                    continue
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise OperationalError(
            f"cannot list archive directory {store}: {error.strerror}") from None
    return names


def _store_results(connection: sqlite3.Connection, results: list[_Row | _Skip]) -> None:
    for result in results:
        if isinstance(result, _Row):
            connection.execute(_INSERT, result.values)
            connection.execute("DELETE FROM unindexed WHERE bundle = ?", (result.values[0],))
        else:
            connection.execute("INSERT OR REPLACE INTO unindexed (bundle, reason, signature) "
                               "VALUES (?, ?, ?)", (result.name, result.reason, result.signature))
            connection.execute("DELETE FROM captures WHERE bundle = ?", (result.name,))


def _sync(connection: sqlite3.Connection, store: Path) -> None:
    """Bring the rows in line with the bundle directories (the self-healing step).

    Also how a fresh, empty catalog is filled (rebuild, in-memory index): there every
    directory is a candidate and nothing is gone, so one code path indexes both ways.
    """
    on_disk = _bundle_names(store)
    known = {row[0] for row in connection.execute("SELECT bundle FROM captures")}
    unindexed = dict(connection.execute("SELECT bundle, signature FROM unindexed").fetchall())
    candidates = sorted(name for name in on_disk - known
                        if name not in unindexed
                        or unindexed[name] != _manifest_signature(store / name / MANIFEST_PATH))
    gone = sorted((known | unindexed.keys()) - on_disk)
    if not candidates and not gone:
        return
    results = [_index_bundle(store, name) for name in candidates]
    with _transaction(connection):
        _store_results(connection, results)
        for name in gone:
            if not (store / name).is_dir():  # still gone now that we hold the write lock
                connection.execute("DELETE FROM captures WHERE bundle = ?", (name,))
                connection.execute("DELETE FROM unindexed WHERE bundle = ?", (name,))


def _remove_stale_rebuilds(store: Path) -> None:
    """Delete temporary catalogs left by a rebuild that died (nobody holds their lock)."""
    for path in store.glob(f"{REBUILD_PREFIX}*"):
        remove_abandoned(path)


def _retire(store: Path) -> None:
    """Get the current catalog file out of the way (we hold the exclusive lock).

    A sound one is checkpointed and taken out of WAL mode first, so that no moment of the
    swap leaves a database whose pages live partly in a log that is about to be deleted;
    then the side files go, so that the new file is never paired with the old log.
    """
    path = store / CATALOG_FILE
    if path.is_file():
        try:
            connection = _connect(path)
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.execute("PRAGMA journal_mode = DELETE")
            finally:
                connection.close()
        except sqlite3.Error:
            pass  # unreadable: nothing to keep
    for suffix in _SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _rebuild(store: Path, *, force: bool) -> ReindexReport:
    """Build a fresh catalog of ``store`` beside the old one and swap it in atomically.

    Without ``force`` (a catalog found missing or unsound) the swap is skipped when another
    process has meanwhile put a sound catalog in place.
    """
    _remove_stale_rebuilds(store)
    temporary = store / f"{REBUILD_PREFIX}{secrets.token_hex(8)}.sqlite"
    try:
        # Held while it exists, so that other rebuilds know it is live (see lockfile.py).
        fd = create_held(temporary)
    except OSError as error:
        raise OperationalError(
            f"cannot write the catalog in {store}: {error.strerror}") from None
    try:
        os.fchmod(fd, 0o644)  # created 0600: that would hide the catalog from others sharing it
        connection = _connect(temporary)
        try:
            connection.execute("PRAGMA journal_mode = OFF")  # a scratch file until renamed
            connection.execute("PRAGMA synchronous = OFF")
            _create_schema(connection)
            _sync(connection, store)
            indexed = connection.execute("SELECT count(*) FROM captures").fetchone()[0]
            skipped = tuple(Unindexed(name=row[0], reason=row[1]) for row in connection.execute(
                "SELECT bundle, reason FROM unindexed ORDER BY bundle"))
        finally:
            connection.close()
        os.fsync(fd)
        with _flock(store, exclusive=True):
            if not force:
                with contextlib.suppress(_CatalogBrokenError, sqlite3.Error):
                    _open_checked(store).close()
                    return ReindexReport(store / CATALOG_FILE, indexed, skipped)
            _retire(store)
            os.rename(temporary, store / CATALOG_FILE)
            fsync_directory(store)
    except sqlite3.Error as error:
        raise OperationalError(f"cannot build the catalog in {store}: {error}") from None
    except OSError as error:
        raise OperationalError(
            f"cannot write the catalog in {store}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
        os.close(fd)
    return ReindexReport(store / CATALOG_FILE, indexed, skipped)


def _memory_catalog(store: Path) -> sqlite3.Connection:
    """An index built in memory, for a store we cannot (or need not) write to."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    _create_schema(connection)
    if store.is_dir():
        _sync(connection, store)
    return connection


def _with_catalog(store: Path, action: Callable[[sqlite3.Connection], T], *,
                  write: bool = False, sync: bool = True) -> T:
    """Run ``action`` on an open, sound, up-to-date catalog of ``store``.

    A missing or unsound catalog is rebuilt first; a read in a store where the catalog cannot
    be written or opened falls back to an index built in memory. ``action`` runs again after
    such a rebuild or fallback, so it must be safe to repeat.

    Each call is one opening (one shared lock, one sync with the directory listing), so what
    a command reads from the catalog belongs in one ``action``, not in several calls.
    ``sync=False`` skips the sync, for a write that needs no other row (its cost grows with
    the store: 11 ms with 10,000 bundles); the next opening that syncs heals the rest.
    """
    if not store.is_dir():
        if write:
            raise OperationalError(f"archive directory {store} does not exist")
        connection = _memory_catalog(store)
        try:
            return action(connection)
        finally:
            connection.close()
    problem: BaseException | None = None
    for attempt in range(4):
        try:
            with _flock(store, exclusive=False):
                connection = _open_checked(store)
                try:
                    if sync:
                        _sync(connection, store)
                    return action(connection)
                finally:
                    connection.close()
        except _CatalogBrokenError:
            pass
        except sqlite3.DatabaseError as error:
            problem = error
            if not _is_corruption(error):
                break
        except OSError as error:
            problem = error
            break
        if attempt < 3:
            try:
                # A catalog found corrupt mid-operation may pass the cheap check; force it.
                _rebuild(store, force=problem is not None)
            except OperationalError as error:
                problem = error
                break
            problem = None
    if write:
        detail = getattr(problem, "strerror", None) or str(problem or "keeps failing")
        raise OperationalError(f"catalog {store / CATALOG_FILE}: {detail}",
                               remedy="run 'provenance reindex' to rebuild it")
    connection = _memory_catalog(store)
    try:
        return action(connection)
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------
# The library API


def record_capture(store: Path, bundle: Path, loaded: LoadedManifest | None = None) -> None:
    """Add (or replace) the row of one committed bundle of ``store``.

    ``loaded`` is the bundle's manifest when the caller already holds it (the capture that
    just wrote it), which spares reading and parsing it back.

    Raises ``OperationalError`` when the catalog cannot be written; the bundle itself is
    untouched, and the next opening of the catalog indexes it anyway.

    Only this row is written: bringing the rest of the catalog in line with the store is
    left to the next reading (a capture reads it while its requests are out), so the end of
    a capture does not list a store of thousands of bundles.
    """
    if bundle.parent.resolve() != store.resolve():
        raise UsageError(f"{bundle} is not a bundle of the archive store {store}")
    result: _Row | _Skip = _row_for(bundle.name, loaded.manifest, loaded.raw) \
        if loaded is not None else _index_bundle(store, bundle.name)
    if isinstance(result, _Skip):
        raise BundleFormatError(f"{bundle}: not indexed: {result.reason}")

    def add(connection: sqlite3.Connection) -> None:
        with _transaction(connection):
            _store_results(connection, [result])

    try:
        _with_catalog(store, add, write=True, sync=False)
    except sqlite3.Error as error:
        raise OperationalError(f"catalog {store / CATALOG_FILE}: {error}") from None


def reindex(store: Path) -> ReindexReport:
    """Rebuild the catalog from the bundles alone and swap it in atomically."""
    if not store.is_dir():
        raise UsageError(f"archive directory {store} does not exist")
    return _rebuild(store, force=True)


def _query(connection: sqlite3.Connection, store: Path, query: str,
           parameters: tuple[object, ...] = ()) -> list[CatalogEntry]:
    return [_entry(store, row) for row in connection.execute(query, parameters)]


def _captures(connection: sqlite3.Connection, store: Path, url: str | None,
              since: datetime | None) -> list[CatalogEntry]:
    clauses: list[str] = []
    parameters: list[object] = []
    if url is not None:
        clauses.append("url_key = ?")
        parameters.append(url_key(url))
    if since is not None:
        clauses.append("started_utc >= ?")
        parameters.append(rfc3339(since))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return _query(connection, store,
                  f"{_SELECT}{where} ORDER BY started_utc DESC, capture_id DESC",
                  tuple(parameters))


def _unindexed(connection: sqlite3.Connection) -> list[Unindexed]:
    return [Unindexed(name=name, reason=reason) for name, reason in connection.execute(
        "SELECT bundle, reason FROM unindexed ORDER BY bundle")]


def list_captures(store: Path, url: str | None = None,
                  since: datetime | None = None) -> list[CatalogEntry]:
    """Captures in the store, newest first; only those of ``url`` (by URL key) / since then."""
    return _with_catalog(store, lambda connection: _captures(connection, store, url, since))


def unindexed_bundles(store: Path) -> list[Unindexed]:
    """Directories in the store that could not be indexed, with the reason."""
    return _with_catalog(store, _unindexed)


@dataclass(frozen=True)
class Listing:
    """The captures asked for and the directories that could not be indexed, read together."""

    entries: list[CatalogEntry]
    unindexed: list[Unindexed]


def listing(store: Path, url: str | None = None, since: datetime | None = None) -> Listing:
    """``list_captures`` and ``unindexed_bundles`` from one opening of the catalog."""
    return _with_catalog(store, lambda connection: Listing(
        _captures(connection, store, url, since), _unindexed(connection)))


def _read_manifest_bytes(bundle: Path) -> bytes | None:
    return read_capped(bundle / MANIFEST_PATH, MAX_MANIFEST_BYTES)


def previous_capture(store: Path, url: str) -> PreviousCapture | None:
    """The most recent committed capture of the same URL key (by start time), to link to.

    The digest is of the predecessor's manifest bytes as they are on disk now. Rows are read
    newest first and only until one has a readable manifest: a URL captured a thousand times
    costs one row, not a thousand.
    """
    def newest_readable(connection: sqlite3.Connection) -> PreviousCapture | None:
        rows = connection.execute(
            f"{_SELECT} WHERE url_key = ? ORDER BY started_utc DESC, capture_id DESC",
            (url_key(url),))
        for row in rows:
            entry = _entry(store, row)
            raw = _read_manifest_bytes(entry.bundle)
            if raw is not None:
                return PreviousCapture(capture_id=entry.capture_id,
                                       manifest_sha256=hash_bytes(raw))
        return None

    return _with_catalog(store, newest_readable)


def _bundle_at(ref: str) -> Path | None:
    """``ref`` as a bundle directory; None if it is to be looked up as an id in the catalog."""
    text = ref.strip()
    if not text:
        raise UsageError("an empty capture id names nothing")
    given = Path(text)
    if (given / MANIFEST_PATH).is_file():
        return given
    if "/" in text or os.sep in text or text in (".", ".."):
        what = "is not a provenance bundle" if given.is_dir() else "does not exist"
        raise UsageError(f"{text} {what} (no {MANIFEST_PATH})")
    return None


def _lookup(connection: sqlite3.Connection, store: Path, ref: str) -> Path:
    """The bundle of the capture id or unique id prefix ``ref``."""
    text = ref.strip()
    if not store.is_dir():
        raise UsageError(f"no capture {text!r}: archive directory {store} does not exist",
                         remedy="pass --archive-dir or set PROVENANCE_ARCHIVE_DIR")
    needle = text.lower()
    pattern = (len(needle), needle, len(needle), needle)
    matches: list[tuple[str, str]] = connection.execute(
        "SELECT bundle, capture_id FROM captures WHERE substr(capture_id, 1, ?) = ? "
        "OR substr(bundle, 1, ?) = ? ORDER BY bundle", pattern).fetchall()
    matches += connection.execute(
        "SELECT bundle, bundle FROM unindexed WHERE substr(bundle, 1, ?) = ? "
        "ORDER BY bundle", pattern[:2]).fetchall()
    exact = [bundle for bundle, capture_id in matches if needle in (bundle, capture_id)]
    names = sorted(set(exact) if len(set(exact)) == 1 else {bundle for bundle, _ in matches})
    if not names:
        raise UsageError(f"no capture {text!r} in {store}",
                         remedy="'provenance list' shows the captures")
    if len(names) > 1:
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise UsageError(f"capture id {text!r} is ambiguous in {store}: it matches "
                         f"{len(names)} captures: {shown}", remedy="give more of the id")
    return store / names[0]


def resolve_capture(store: Path, ref: str) -> Path:
    """The bundle that ``ref`` names: a bundle directory, a capture id, or a unique id prefix."""
    return resolve_captures(store, [ref])[0]


def resolve_captures(store: Path, refs: Sequence[str]) -> list[Path]:
    """The bundle of each of ``refs`` (as ``resolve_capture``), in order.

    The catalog is opened once for all of them, and not at all when every one is a bundle
    directory: comparing two bundles by path needs no archive store.
    """
    paths = []
    for ref in refs:
        bundle = _bundle_at(ref)
        if bundle is None:
            break
        paths.append(bundle)
    else:
        return paths
    # In order again, so that the first bad ref is the one reported, as one at a time would.
    return _with_catalog(store, lambda connection: [
        _bundle_at(ref) or _lookup(connection, store, ref) for ref in refs])


# ---------------------------------------------------------------------------------------------
# History: the hash-linked captures of one URL

LinkStatus = Literal["first", "ok", "none", "missing", "altered", "other-url", "unreadable"]
BROKEN_LINKS: frozenset[str] = frozenset({"missing", "altered", "other-url", "unreadable"})


@dataclass(frozen=True)
class HistoryEntry:
    """One capture of the URL and the state of the link it records to its predecessor."""

    entry: CatalogEntry
    #: sha256 of its manifest bytes as they are on disk now (None if unreadable)
    manifest_sha256: str | None
    #: the link as its manifest on disk records it
    previous: PreviousCapture | None
    link: LinkStatus
    detail: str

    @property
    def broken(self) -> bool:
        return self.link in BROKEN_LINKS

    def as_dict(self) -> dict[str, object]:
        return {
            "capture_id": self.entry.capture_id,
            "bundle": str(self.entry.bundle),
            "requested_url": self.entry.requested_url,
            "started_at": self.entry.started_at,
            "state": self.entry.state,
            "manifest_sha256": self.manifest_sha256,
            "previous": self.previous.model_dump() if self.previous else None,
            "link": self.link,
            "broken": self.broken,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class History:
    url: str
    url_key: str
    entries: tuple[HistoryEntry, ...]

    @property
    def broken(self) -> list[HistoryEntry]:
        return [entry for entry in self.entries if entry.broken]

    def as_dict(self) -> dict[str, object]:
        return {"url": self.url, "url_key": self.url_key,
                "broken": len(self.broken),
                "captures": [entry.as_dict() for entry in self.entries]}


def history(store: Path, url: str) -> History:
    """Every capture of ``url`` (by URL key), oldest first, with each ``previous`` link checked.

    A link is read from the manifest on disk and checked against the predecessor's manifest
    bytes as they are on disk now: a predecessor deleted (``missing``), altered
    (``altered``), of another URL (``other-url``), or a manifest that no longer parses
    (``unreadable``) is a broken link. No link at all (``none``: captured before history was
    recorded, or alongside its predecessor) is reported, not counted as broken.
    """
    return _with_catalog(store, lambda connection: _history(connection, store, url, {}))


def capture_history(store: Path, ref: str) -> History:
    """``history`` of the URL that the capture ``ref`` (as ``resolve_capture``) requested.

    Raises ``BundleFormatError`` when that capture's manifest cannot be read.
    """
    # A bundle given by path is read before the catalog is opened, as resolving it needs none.
    given = _bundle_at(ref)
    known = load_manifest(given / MANIFEST_PATH) if given is not None else None

    def run(connection: sqlite3.Connection) -> History:
        bundle = given if given is not None else _lookup(connection, store, ref)
        loaded = known if known is not None else load_manifest(bundle / MANIFEST_PATH)
        return _history(connection, store, loaded.manifest.requested_url, {bundle: loaded})

    return _with_catalog(store, run)


def _history(connection: sqlite3.Connection, store: Path, url: str,
             known: Mapping[Path, LoadedManifest]) -> History:
    """``history`` in an open catalog; ``known``: manifests already read, by bundle path."""
    key = url_key(url)
    entries = _query(connection, store,
                     f"{_SELECT} WHERE url_key = ? ORDER BY started_utc, capture_id", (key,))
    digests: dict[Path, str | None] = {}

    def digest(bundle: Path) -> str | None:
        if bundle not in digests:
            raw = _read_manifest_bytes(bundle)
            digests[bundle] = hash_bytes(raw) if raw is not None else None
        return digests[bundle]

    # The links as the manifests on disk record them (a catalog row may predate an edit).
    recorded: dict[Path, PreviousCapture | str | None] = {}
    for entry in entries:
        loaded = known.get(entry.bundle)
        if loaded is not None:
            digests[entry.bundle] = hash_bytes(loaded.raw)
            recorded[entry.bundle] = loaded.manifest.previous
            continue
        raw = _read_manifest_bytes(entry.bundle)
        if raw is None:
            recorded[entry.bundle] = "manifest missing or unreadable"
            continue
        digests[entry.bundle] = hash_bytes(raw)
        try:
            recorded[entry.bundle] = parse_manifest(raw).previous
        except BundleFormatError as error:
            recorded[entry.bundle] = str(error)
    wanted = sorted({link.capture_id for link in recorded.values()
                     if isinstance(link, PreviousCapture)})
    by_id: dict[str, list[CatalogEntry]] = {}
    for capture_id in wanted:
        found = _query(connection, store, f"{_SELECT} WHERE capture_id = ?", (capture_id,))
        if found:
            by_id[capture_id] = found
    result = []
    for index, entry in enumerate(entries):
        link = recorded[entry.bundle]
        if isinstance(link, str):
            result.append(HistoryEntry(entry, digest(entry.bundle), entry.previous,
                                       "unreadable", f"its manifest cannot be read: {link}"))
        else:
            result.append(_check_link(entry, link, index, by_id, digest))
    return History(url=url, url_key=key, entries=tuple(result))


def _check_link(entry: CatalogEntry, previous: PreviousCapture | None, index: int,
                by_id: dict[str, list[CatalogEntry]],
                digest: Callable[[Path], str | None]) -> HistoryEntry:
    own = digest(entry.bundle)
    if previous is None:
        if index == 0:
            return HistoryEntry(entry, own, None, "first", "first capture of this URL")
        return HistoryEntry(entry, own, None, "none",
                            "records no previous capture (made before history was kept, "
                            "or at the same time as its predecessor)")
    candidates = by_id.get(previous.capture_id, [])
    if not candidates:
        return HistoryEntry(entry, own, previous, "missing",
                            f"previous capture {previous.capture_id} is not in the store "
                            "(deleted or moved)")
    matching = [c for c in candidates if digest(c.bundle) == previous.manifest_sha256]
    if matching:
        predecessor = matching[0]
        if predecessor.url_key != entry.url_key:
            return HistoryEntry(entry, own, previous, "other-url",
                                f"previous capture {previous.capture_id} is of another URL "
                                f"({predecessor.requested_url})")
        return HistoryEntry(entry, own, previous, "ok",
                            f"links to {previous.capture_id}; its manifest sha256 matches")
    actual = digest(candidates[0].bundle)
    return HistoryEntry(entry, own, previous, "altered",
                        f"previous capture {previous.capture_id} has manifest "
                        f"{actual or 'unreadable'}, but this capture recorded "
                        f"{previous.manifest_sha256}: the predecessor was altered")
