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


def download(url, destination, sha256=None):
    """Downloads `url` to `destination` unless it is already there.

    An interrupted transfer leaves `destination + ".part"`; the next call
    resumes from its last byte with an HTTP range request. The finished
    file must have the size the server announced and, when given, the
    `sha256`; otherwise it is deleted and `DownloadError` is raised. Only a
    verified file is renamed to `destination`.

    Returns:
        `destination`.
    """
    if os.path.exists(destination):
        return destination
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    partial = destination + ".part"
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url)
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # Nothing left to fetch.
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {error.code} {error.reason}")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"{url}: {reason}") from None

    if response is not None:
        with response:
            if have and response.status != 206:
                have = 0  # The server ignored the range: start over.
            remaining = response.headers.get("Content-Length")
            total = have + int(remaining) if remaining is not None else None
            name = os.path.basename(destination)
            with (
                open(partial, "ab" if have else "wb") as file,
                _progress_bar(total, have, name) as bar,
            ):
                try:
                    for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                        file.write(chunk)
                        bar.update(len(chunk))
                except (http.client.IncompleteRead, OSError):
                    pass  # The size check below reports it; .part stays.
        size = os.path.getsize(partial)
        if total is not None and size != total:
            raise DownloadError(
                f"{url}: transfer stopped at {size} of {total} bytes; "
                "call again to resume."
            )
    if sha256 is not None and sha256_of(partial) != sha256:
        os.remove(partial)
        raise DownloadError(
            f"{url}: sha256 mismatch (expected {sha256}); the corrupt file "
            "was deleted."
        )
    os.replace(partial, destination)
    return destination
