"""A run store on object storage: `--store s3://bucket/prefix` (or any pyarrow filesystem URI).

The run writes into a local mirror directory exactly as into a local store
(`<HARNESS_WORK_DIR>/store-mirrors/<bucket>-<hash>/`), and `RunStore` copies what it
writes to the object store as soon as it is written:

- run.json on every state change;
- an attempt's artifacts, then its technique grades and sub-scores, then its row
  (`attempts/<attempt_id>.parquet`) last, the moment the attempt is recorded — so an
  object store that holds a row also holds that attempt's artifacts;
- the compacted tables, summary.json and grading_report.json when the run ends.

Readers (`harness runs/report/view`, the service, `--resume`) pull what they read into
the mirror first: run.json of every run for a listing, a run's tables and reports for a
report, one attempt's artifacts when a page shows them. A file is fetched when it is
missing from the mirror or newer on the object store.

The endpoint and credentials come from the URI's query (`?endpoint_override=host:port
&scheme=http&region=...`) or the standard AWS environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION,
AWS_PROFILE). Secrets never appear in a message: `RemoteStore.shown` is the URI without them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import stat
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qsl, urlsplit

import pyarrow.fs as pafs

from harness.errors import RunError
from harness.safe_files import CopyReport, walk_beneath
from harness.spec import Settings

log = logging.getLogger(__name__)

URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: query parameters of an s3:// store URI (the S3FileSystem options a store needs)
S3_QUERY = ("endpoint_override", "scheme", "region", "access_key", "secret_key", "session_token", "anonymous",
            "force_virtual_addressing", "request_timeout", "connect_timeout")
SECRET_KEYS = frozenset({"access_key", "secret_key", "session_token"})
#: a file fetched this close (seconds) to its upload may be rewritten within the same mtime second: fetched again
SETTLE_S = 5.0
#: run.json files looked at (and fetched) at once by a listing of runs
FETCH_THREADS = 16
MAX_UPLOAD_FILES = 10_000
MAX_UPLOAD_MB = 512
#: S3's limit on an object key (UTF-8 bytes)
MAX_KEY_BYTES = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+@-]{0,254}$")


class StoreError(RunError):
    """An object store that cannot be used as asked; the message names the URI (no secrets) and the fix."""


def is_remote(store: object) -> bool:
    """Whether `store` (a --store value) names an object store (`scheme://...`) rather than a local path.
    `file://` URIs are local paths."""
    if not isinstance(store, str):
        return False
    m = URI.match(store)
    return m is not None and m.group(1).lower() != "file"


def local_path_of(store: str) -> Path:
    """A `file://` URI or a plain path as a local Path."""
    if store.lower().startswith("file://"):
        return Path(urlsplit(store).path)
    return Path(store)


@dataclass
class RemoteStore:
    """One object-store run store: its filesystem, the base path in it, and this machine's mirror."""

    uri: str
    shown: str  # the URI without secrets, for every message
    fs: pafs.FileSystem
    base: str  # "bucket/prefix" (no trailing slash)
    mirror: Path
    endpoint: Optional[str] = None  # host:port when one was named (probed before the first request)
    bucketed: bool = True  # the first part of `base` is a bucket (S3, GCS, Azure); else `base` is a folder
    secrets: tuple[str, ...] = ()

    # ------------------------------------------------------------------ keys
    def key(self, rel: str) -> str:
        """The object path of `rel` (a '/'-separated path inside the store)."""
        return f"{self.base}/{rel}" if rel else self.base

    def _rel(self, path: str) -> Optional[str]:
        """The store-relative name of an object path, or None when it is no safe mirror name."""
        if not path.startswith(self.base + "/"):
            return None
        rel = path[len(self.base) + 1:]
        parts = rel.split("/")
        if not parts or any(p in ("", ".", "..") or "\x00" in p or p.startswith(".") for p in parts):
            return None
        return rel

    # ------------------------------------------------------------------ checks
    def check(self, write: bool) -> None:
        """Refuse at once, in one line, a store that cannot be reached, has no bucket, refuses
        the credentials or (with `write`) cannot be written. Raises StoreError."""
        if self.endpoint:
            host, _, port = self.endpoint.rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
            except (OSError, ValueError) as e:
                raise StoreError(f"--store {self.shown}: nothing answers at the endpoint {self.endpoint} "
                                 f"({getattr(e, 'strerror', None) or e}): start the object store or fix "
                                 "endpoint_override in the URI / AWS_ENDPOINT_URL") from None
        bucket = self.base.split("/", 1)[0] if self.bucketed else self.base
        try:
            info = self.fs.get_file_info(bucket)
            if info.type == pafs.FileType.NotFound and self.bucketed:
                raise StoreError(f"--store {self.shown}: the bucket {bucket!r} does not exist: create it "
                                 f"(e.g. `aws s3 mb s3://{bucket}`) or name an existing bucket")
            if write and not self.bucketed:
                self.fs.create_dir(self.base, recursive=True)
            if write:
                probe = self.key(f".probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
                with self.fs.open_output_stream(probe) as out:
                    out.write(b"")
                self.fs.delete_file(probe)
        except OSError as e:
            raise StoreError(self.explain(e)) from None

    def explain(self, e: BaseException) -> str:
        """One line for an object-store failure: the URI (no secrets), the cause, the fix."""
        text = " ".join(str(e).split())
        for s in self.secrets:
            text = text.replace(s, "***")
        low = text.lower()
        if any(w in low for w in ("invalidaccesskeyid", "signaturedoesnotmatch", "access_denied", "accessdenied",
                                  "forbidden", "invalidtoken", "expiredtoken", "http response code: 403",
                                  "no credentials", "unable to find credentials", "credential")):
            return (f"--store {self.shown}: the object store refused the credentials ({text[:200]}): set "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to a key that may read and write it")
        if any(w in low for w in ("nosuchbucket", "no_such_bucket", "bucket does not exist")):
            return f"--store {self.shown}: the bucket does not exist ({text[:200]}): create it or fix the URI"
        if any(w in low for w in ("curlcode", "couldn't connect", "could not connect", "resolve host", "timed out",
                                  "timeout", "connection refused", "network")):
            return (f"--store {self.shown}: the object store cannot be reached ({text[:200]}): check the endpoint "
                    "(endpoint_override / AWS_ENDPOINT_URL) and the network")
        return f"--store {self.shown}: the object store failed ({text[:300]})"

    # ------------------------------------------------------------------ upload
    def _open_out(self, rel: str) -> Any:
        """An output stream for `rel`; a filesystem with real folders (not a bucket) gets its parents first."""
        key = self.key(rel)
        if not self.bucketed:
            self.fs.create_dir(key.rsplit("/", 1)[0], recursive=True)
        return self.fs.open_output_stream(key)

    def upload_file(self, local: Path, rel: str) -> None:
        """Copy one file the harness wrote (in the mirror) to `rel`; then mark the mirror copy
        newer than the object, so a pull never replaces it with itself."""
        data = local.read_bytes()
        try:
            with self._open_out(rel) as out:
                out.write(data)
        except OSError as e:
            raise StoreError(self.explain(e)) from None
        try:
            os.utime(local)
        except OSError:
            pass

    def upload_tree(self, local_dir: Path, rel: str, replace: bool = False) -> CopyReport:
        """Copy the regular single-link files beneath `local_dir` (an attempt's artifacts, written
        by an agent: hostile) to `rel/...`; symlinks, hard links, FIFOs and devices are skipped,
        at most MAX_UPLOAD_FILES files and MAX_UPLOAD_MB MB; `replace` first deletes what is under
        `rel` (an earlier try's files). Returns what was copied and refused."""
        report = CopyReport()
        if replace:
            self.delete_tree(rel)
        if not local_dir.is_dir() or local_dir.is_symlink():
            return report
        for name, fd, size in walk_beneath(local_dir, MAX_UPLOAD_FILES, MAX_UPLOAD_MB * 1024**2, report):
            if any(p.startswith(".") and p.endswith(".tmp") for p in name.split("/")):
                continue  # the store's own temporary files
            why = self._unkeyable(f"{rel}/{name}")
            if why:  # the agent's name cannot be an object key: that file is left out, never the run
                report.refuse(os.fsencode(name).decode("utf-8", "backslashreplace"), why)
                continue
            try:
                with self._open_out(f"{rel}/{name}") as out:
                    left = size
                    while left > 0:
                        chunk = os.pread(fd, min(left, 1 << 20), size - left)
                        if not chunk:
                            break
                        out.write(chunk)
                        left -= len(chunk)
            except OSError as e:
                raise StoreError(self.explain(e)) from None
        if report.refused:
            log.warning("artifacts of %s not uploaded: %s", rel, dict(list(report.refused.items())[:5]))
        return report

    def _unkeyable(self, rel: str) -> Optional[str]:
        """Why `rel` (an agent's file name under an attempt) cannot be an object key, or None."""
        try:
            key = self.key(rel).encode("utf-8")
        except UnicodeEncodeError:
            return "a name that is not UTF-8"
        return f"a key longer than {MAX_KEY_BYTES} bytes" if len(key) > MAX_KEY_BYTES else None

    def delete_file(self, rel: str) -> None:
        """Delete the object `rel` (nothing when there is none)."""
        try:
            self.fs.delete_file(self.key(rel))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(self.explain(e)) from None

    def delete_tree(self, rel: str) -> None:
        """Delete every object beneath `rel` (nothing when there is none)."""
        try:
            self.fs.delete_dir_contents(self.key(rel), missing_dir_ok=True)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(self.explain(e)) from None

    # ------------------------------------------------------------------ pull
    def listing(self, rel: str, recursive: bool = False) -> list[pafs.FileInfo]:
        """What is beneath `rel` (nothing when it does not exist)."""
        try:
            return list(self.fs.get_file_info(pafs.FileSelector(self.key(rel), recursive=recursive, allow_not_found=True)))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(self.explain(e)) from None

    def pull(self, rel: str, recursive: bool = False, only: Optional[Callable[[str], bool]] = None,
             dirs: Iterable[str] = ()) -> list[str]:
        """Fetch into the mirror every file beneath `rel` (and, one level down, beneath its
        sub-folders named in `dirs`) that is missing there or newer on the object store;
        `only` filters store-relative names. Returns the names of the sub-folders seen."""
        infos = self.listing(rel, recursive)
        wanted = set(dirs)
        subdirs = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
        for d in subdirs:
            if d in wanted:
                infos += self.listing(f"{rel}/{d}" if rel else d)
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            name = self._rel(info.path)
            if name is None or (only is not None and not only(name)):
                continue
            self.fetch(info, name)
        return subdirs

    def fetch_if_stale(self, rels: list[str]) -> None:
        """Fetch these store-relative files when they are newer on the object store than in the mirror."""
        if not rels:
            return
        from concurrent.futures import ThreadPoolExecutor

        def one(rel: str) -> None:  # a HEAD, then a GET when newer: many at once (pyarrow releases the GIL)
            info = self.fs.get_file_info(self.key(rel))
            if info.type == pafs.FileType.File:
                self.fetch(info, rel)

        try:
            with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(rels))) as pool:
                list(pool.map(one, rels))
        except OSError as e:
            raise StoreError(self.explain(e)) from None

    def _plain_dirs_to(self, local: Path) -> bool:
        """Make the folders from the mirror down to `local`'s parent; False when one of them is a
        symlink or not a folder (a mirror folder may be an attempt's, where nothing is trusted)."""
        self.mirror.mkdir(parents=True, exist_ok=True)  # harness's own folder
        here = self.mirror
        for part in local.relative_to(self.mirror).parts[:-1]:
            here = here / part
            try:
                os.mkdir(here)
            except FileExistsError:
                pass
            except OSError:
                return False
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                return False
        return True

    def fetch(self, info: pafs.FileInfo, rel: str) -> None:
        """Copy one object into the mirror when the mirror's copy is missing or older."""
        local = self.mirror / rel
        remote_ns = info.mtime_ns or 0
        try:
            st = os.lstat(local)
            if stat.S_ISREG(st.st_mode) and st.st_mtime_ns >= remote_ns:
                return
        except FileNotFoundError:
            pass
        if not self._plain_dirs_to(local):
            log.warning("not fetching %s: a folder on its way in the mirror is a symlink or no folder", rel)
            return
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with self.fs.open_input_stream(info.path) as src, open(fd, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            # just written (maybe rewritten within the same second): one tick older, so the next pull looks again
            settled = time.time_ns() - remote_ns > SETTLE_S * 1e9
            ns = remote_ns if settled else remote_ns - 1
            os.utime(tmp, ns=(ns, ns))
            os.replace(tmp, local)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)  # replaced or deleted meanwhile: the next pull sees it
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(self.explain(e)) from None


# ====================================================================== opening a store URI

_OPEN: dict[str, RemoteStore] = {}
_OPEN_LOCK = threading.Lock()


def open_remote(uri: str, work_dir: Optional[Path] = None, check: bool = True) -> RemoteStore:
    """The RemoteStore of a store URI, checked once per process (`check`: reachable, bucket there).
    `work_dir` holds the mirror (default: HARNESS_WORK_DIR, else ~/.cache/harness/work).
    Raises StoreError (one line: the URI without secrets and the fix)."""
    with _OPEN_LOCK:
        if uri in _OPEN:
            return _OPEN[uri]
    store = _parse(uri, work_dir)
    if check:
        store.check(write=False)
    with _OPEN_LOCK:
        return _OPEN.setdefault(uri, store)


def _mirror_root(work_dir: Optional[Path]) -> Path:
    if work_dir is None:
        work_dir = Settings.from_env().work_dir
    return work_dir / "store-mirrors"


def _parse(uri: str, work_dir: Optional[Path]) -> RemoteStore:
    userinfo, _ = _authority(uri)
    if "/" in userinfo:
        raise StoreError(f"--store {shown_store(uri)}: the credentials in the URI hold a '/': write it as %2F, "
                         "or leave the credentials out of the URI and set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    secrets = tuple(v for k, v in query.items() if k in SECRET_KEYS and v) + tuple(x for x in (parts.password,) if x)
    shown = shown_store(uri)
    endpoint: Optional[str] = None
    if scheme in ("s3", "s3a"):
        fs, base, endpoint = _s3(parts, query, shown)
        base = base.strip("/")
    else:
        fs, base = _generic(uri, shown)
        base = base.rstrip("/") if base.strip("/") else ""  # an absolute path (hdfs://...) stays absolute
    bucketed = scheme in ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az")
    if not base:
        raise StoreError(f"--store {shown}: names no bucket; use s3://BUCKET/PREFIX")
    digest = hashlib.sha256(f"{scheme}://{base}?{endpoint or ''}".encode()).hexdigest()[:12]
    label = re.sub(r"[^A-Za-z0-9._-]", "_", base.strip("/").split("/", 1)[0])[:40] or scheme
    mirror = _mirror_root(work_dir) / f"{label}-{digest}"
    return RemoteStore(uri=uri, shown=shown, fs=fs, base=base, mirror=mirror, endpoint=endpoint, secrets=secrets,
                       bucketed=bucketed)


def _s3(parts: object, query: dict[str, str], shown: str) -> tuple[pafs.FileSystem, str, Optional[str]]:
    from urllib.parse import SplitResult, unquote

    assert isinstance(parts, SplitResult)
    unknown = sorted(set(query) - set(S3_QUERY))
    if unknown:
        raise StoreError(f"--store {shown}: unknown query parameter(s) {', '.join(unknown)}; known: {', '.join(S3_QUERY)}")
    opts: dict[str, object] = {}
    endpoint = query.get("endpoint_override")
    scheme = query.get("scheme")
    if not endpoint:  # the AWS SDKs' own variable for a non-AWS endpoint (MinIO, moto, ...)
        env_url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if env_url:
            e = urlsplit(env_url if "://" in env_url else f"https://{env_url}")
            endpoint, scheme = e.netloc, scheme or e.scheme
    if endpoint:
        opts["endpoint_override"] = endpoint
        opts["scheme"] = scheme or "https"
    elif scheme:
        opts["scheme"] = scheme
    region = query.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region or endpoint:
        opts["region"] = region or "us-east-1"
    user, password = parts.username, parts.password
    if user and password:
        opts["access_key"], opts["secret_key"] = unquote(user), unquote(password)
    for k in ("access_key", "secret_key", "session_token"):
        if query.get(k):
            opts[k] = query[k]
    if query.get("anonymous", "").lower() in ("1", "true", "yes"):
        opts["anonymous"] = True
    if query.get("force_virtual_addressing", "").lower() in ("1", "true", "yes"):
        opts["force_virtual_addressing"] = True
    try:
        opts["connect_timeout"] = float(query.get("connect_timeout") or 5)
        opts["request_timeout"] = float(query.get("request_timeout") or 60)
    except ValueError:
        raise StoreError(f"--store {shown}: connect_timeout / request_timeout must be seconds") from None
    opts["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=3)
    try:
        fs = pafs.S3FileSystem(**opts)
    except (OSError, ValueError, TypeError) as e:
        raise StoreError(f"--store {shown}: {' '.join(str(e).split())[:200]}") from None
    base = (parts.hostname or "") + parts.path
    if endpoint and not re.fullmatch(r"\[?[A-Za-z0-9.:-]+\]?:\d+", endpoint):
        return fs, base, None  # no port to probe: the first request tells
    return fs, base, endpoint


def _generic(uri: str, shown: str) -> tuple[pafs.FileSystem, str]:
    """Any other filesystem pyarrow knows by URI (gs://, hdfs://, abfs://...), else fsspec's, if installed."""
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path
    except (ValueError, OSError, TypeError) as e:
        # pyarrow's message quotes the whole URI, secrets included: show it only as `shown`
        first = " ".join(str(e).replace(uri, shown).split())[:160]
        if _authority(uri)[0]:
            first = "the URI was refused"
    scheme = uri.split("://", 1)[0]
    try:
        import fsspec  # optional

        spec_fs = fsspec.filesystem(scheme)
        handler = pafs.FSSpecHandler(spec_fs)
        return pafs.PyFileSystem(handler), uri.split("://", 1)[1]
    except ImportError:
        pass
    except (ValueError, OSError, TypeError, KeyError):
        pass
    raise StoreError(f"--store {shown}: unknown or unusable store scheme {scheme!r} ({first}): use a local path, "
                     "s3://bucket/prefix (S3, MinIO: endpoint in ?endpoint_override=host:port&scheme=http or "
                     "AWS_ENDPOINT_URL), or another pyarrow/fsspec filesystem URI")


def _authority(uri: str) -> tuple[str, str]:
    """(the credentials part of `scheme://user:secret@rest?query`, without its '@'; the URI with it left out).
    The credentials run to the LAST '@' before the query, so an unencoded '/' in a secret key
    (common in AWS keys) cannot end them early and show the rest as a bucket."""
    scheme, rest = uri.split("://", 1)
    head, sep, query = rest.partition("?")
    if "@" not in head:
        return "", uri
    userinfo, _, where = head.rpartition("@")
    return userinfo, f"{scheme}://{where}{sep}{query}"


def shown_store(store: str) -> str:
    """A --store value fit for messages and API responses: an object-store URI without its secrets."""
    if not is_remote(store):
        return store
    _, store = _authority(store)
    parts = urlsplit(store)
    query = "&".join(f"{k}={'***' if k in SECRET_KEYS else v}" for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")


def safe_run_id(run_id: str) -> bool:
    """Whether `run_id` can name a folder in the mirror and a key prefix (no '/', no '..')."""
    return bool(_NAME.match(run_id))


__all__ = ["RemoteStore", "StoreError", "is_remote", "local_path_of", "open_remote", "safe_run_id", "shown_store"]
