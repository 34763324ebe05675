"""Resumable, verified HTTP(S) downloads with a progress bar."""

import hashlib
import http.client
import os
import urllib.error
import urllib.request

# Seconds to wait for a server before a source counts as unreachable.
CONNECT_TIMEOUT = 20
CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A file that could not be fetched or failed its integrity check."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(total, initial, name):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
    )


class _StalePart(Exception):
    """The partial file does not fit the remote one (it is longer)."""


def open_url(url, byte_range=None):
    """`urlopen(url)`, with `Range: bytes=<byte_range>` when given.

    Raises:
        DownloadError: the server cannot be reached or answers an HTTP
            error (kept in the error's `http_error`).
    """
    request = urllib.request.Request(url)
    if byte_range is not None:
        request.add_header("Range", f"bytes={byte_range}")
    try:
        return urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT)
    except urllib.error.HTTPError as error:
        failure = DownloadError(f"{url}: HTTP {error.code} {error.reason}")
        failure.http_error = error
        raise failure from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"{url}: {reason}") from None


def _open(url, have):
    """The response for `url` from byte `have` on; None when the server says
    (HTTP 416) that the file has exactly `have` bytes."""
    try:
        return open_url(url, f"{have}-" if have else None)
    except DownloadError as error:
        http_error = getattr(error, "http_error", None)
        if have and http_error is not None and http_error.code == 416:
            content_range = http_error.headers.get("Content-Range", "")
            if content_range.rpartition("/")[2] == str(have):
                return None
            raise _StalePart() from None
        raise


def _remaining_bytes(url, have):
    """Whether the server holds bytes past `have`: True, False, or None when
    it cannot tell (no range requests)."""
    try:
        response = _open(url, have)
    except _StalePart:
        return None
    if response is None:
        return False
    with response:
        return True if response.status == 206 else None


def _receive(url, response, partial, have, name):
    """Appends the body to `partial`; returns the announced total or None.

    Raises `DownloadError` when the transfer breaks off.
    """
    remaining = response.headers.get("Content-Length")
    total = have + int(remaining) if remaining is not None else None
    with (
        open(partial, "ab" if have else "wb") as file,
        _progress_bar(total, have, name) as bar,
    ):
        try:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                file.write(chunk)
                bar.update(len(chunk))
        except (http.client.IncompleteRead, OSError) as error:
            raise DownloadError(
                f"{url}: the transfer broke off after "
                f"{os.path.getsize(partial)} bytes ({error}); call again to "
                "resume."
            ) from None
    return total


def download(url, destination, sha256=None):
    """Downloads `url` to `destination` unless it is already there.

    An interrupted transfer leaves `destination + ".part"`; the next call
    resumes from its last byte with an HTTP range request (a partial file
    longer than the remote one is discarded). The finished file must have
    the size the server announced (without an announced size, the server
    must confirm by a range request that nothing follows, or `sha256` must
    match) and, when given, the `sha256`; otherwise `DownloadError` is
    raised. Only a verified file is renamed to `destination`.

    Returns:
        `destination`.
    """
    destination = os.fspath(destination)
    if os.path.exists(destination):
        return destination
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    partial = destination + ".part"
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    try:
        response = _open(url, have)
    except _StalePart:
        os.remove(partial)
        have, response = 0, _open(url, 0)
    if response is not None:
        with response:
            if have and response.status != 206:
                have = 0  # The server ignored the range: start over.
            total = _receive(
                url, response, partial, have, os.path.basename(destination)
            )
        size = os.path.getsize(partial)
        if total is not None and size != total:
            raise DownloadError(
                f"{url}: transfer stopped at {size} of {total} bytes; "
                "call again to resume."
            )
        if total is None and sha256 is None:
            more = _remaining_bytes(url, size)
            if more is None:
                raise DownloadError(
                    f"{url}: the server announced no size and serves no "
                    f"byte ranges, so the {size} bytes received cannot be "
                    "verified as complete."
                )
            if more:
                raise DownloadError(
                    f"{url}: the transfer ended after {size} bytes but the "
                    "file goes on; call again to resume."
                )
    if sha256 is not None and sha256_of(partial) != sha256:
        os.remove(partial)
        raise DownloadError(
            f"{url}: sha256 mismatch (expected {sha256}); the corrupt file "
            "was deleted."
        )
    os.replace(partial, destination)
    return destination
