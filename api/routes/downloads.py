"""Large downloads (zip bundles and datasets) written to a spooled file, then streamed.

A claim bundle or a capture dataset can hold hundreds of evidence photos. Built in memory,
a few at once would take the API worker's memory; written to a ``SpooledTemporaryFile`` they
stay in memory only up to ``SPOOL_MEMORY_BYTES`` and go to disk beyond. The whole file is
written before the response starts, so an error (an incident not found) is still an HTTP
error and not a truncated download.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO

from fastapi.responses import StreamingResponse

SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 256 * 1024


def spooled_download(
    write: Callable[[IO[bytes]], object],
    *,
    filename: str,
    media_type: str = "application/zip",
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """Run ``write(file)`` into a spooled temporary file and stream the file as an attachment
    (``headers`` are added, a ``Content-Disposition`` among them replacing the plain one)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    try:
        write(spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := spool.read(CHUNK_BYTES):
                yield chunk
        finally:
            spool.close()

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )
