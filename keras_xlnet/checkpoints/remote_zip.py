"""One member of a remote zip archive, fetched with HTTP range requests.

A release zip of XLNet-Large is 1.3 GB; its vocabulary is 0.8 MB. Reading
the archive's end record and central directory, then the member's local
header and data, transfers little more than the member itself.
"""

import struct
import zipfile

from keras_xlnet.checkpoints.downloads import DownloadError
from keras_xlnet.checkpoints.downloads import open_url

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # 30 bytes, `zipfile`'s layout.
# Bytes of the end-of-central-directory record without an archive comment.
_END_RECORD_BYTES = 22


class RangeRequestsUnsupported(Exception):
    """The server answered a range request with the whole file."""


class _RemoteFile:
    """A read-only, seekable view of a remote file.

    Each read that is not covered by bytes fetched before becomes one range
    request for exactly the bytes asked for; `prefetch` fetches a span ahead
    of the many small reads `zipfile` makes.
    """

    def __init__(self, url):
        self.url = url
        self._spans = []  # (start, bytes) fetched so far.
        self._position = 0
        # The last bytes (the end record), and the size from Content-Range.
        self.size = None
        self._fetch(f"-{_END_RECORD_BYTES}")

    def _fetch(self, byte_range):
        with open_url(self.url, byte_range) as response:
            content_range = response.headers.get("Content-Range", "")
            if response.status != 206 or "/" not in content_range:
                raise RangeRequestsUnsupported(self.url)
            span, total = content_range.split(" ")[-1].split("/")
            start = int(span.split("-")[0])
            data = response.read()
        if len(data) != int(span.split("-")[1]) - start + 1:
            raise DownloadError(
                f"{self.url}: bytes {span} arrived incomplete ({len(data)})."
            )
        self.size = int(total)
        self._spans.append((start, data))

    def prefetch(self, start, stop):
        """Fetches bytes `[start, stop)` in one request."""
        if stop > start and self._cached(start, stop) is None:
            self._fetch(f"{start}-{stop - 1}")

    def _cached(self, start, stop):
        for span_start, data in self._spans:
            if span_start <= start and stop <= span_start + len(data):
                return data[start - span_start : stop - span_start]
        return None

    # === The file interface `zipfile` uses ===
    def seekable(self):
        return True

    def tell(self):
        return self._position

    def seek(self, offset, whence=0):
        base = {0: 0, 1: self._position, 2: self.size}[whence]
        self._position = base + offset
        return self._position

    def read(self, size=-1):
        stop = self.size if size < 0 else min(self.size, self._position + size)
        if stop <= self._position:
            return b""
        self.prefetch(self._position, stop)
        data = self._cached(self._position, stop)
        self._position = stop
        return data


def read_remote_member(url, suffix):
    """The bytes of the first member of the zip at `url` whose name ends
    with `suffix`, CRC-checked, fetched with range requests only.

    Raises:
        RangeRequestsUnsupported: the server does not serve byte ranges.
        DownloadError: the server could not be reached, or the archive holds
            no such member or is corrupt.
    """
    remote = _RemoteFile(url)
    try:
        with zipfile.ZipFile(remote) as archive:
            members = [
                info
                for info in archive.infolist()
                if ("/" + info.filename).endswith(suffix)
            ]
            if not members:
                raise DownloadError(f"{url} holds no member *{suffix}.")
            info = members[0]
            header = info.header_offset
            remote.prefetch(header, header + _LOCAL_HEADER.size)
            remote.seek(header)
            fields = _LOCAL_HEADER.unpack(remote.read(_LOCAL_HEADER.size))
            name_bytes, extra_bytes = fields[-2:]
            data_start = header + _LOCAL_HEADER.size
            remote.prefetch(
                data_start,
                data_start + name_bytes + extra_bytes + info.compress_size,
            )
            return archive.read(info)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{url}: {error}") from None
