"""The access log's handler: lines batched into few writes, none lost, none much delayed."""

from __future__ import annotations

import io
import logging
import time

from web.access_log import BufferedLines, SecondsCachedFormatter


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_are_written_in_batches_and_on_flush() -> None:
    stream = CountingStream()
    handler = BufferedLines(stream, interval=60, max_lines=3)
    log = _logger(handler, "test.access.batches")
    for n in range(4):
        log.info("line %d", n)
    assert stream.getvalue() == "line 0\nline 1\nline 2\n"  # the third filled the batch
    assert stream.writes == 1
    handler.flush()  # logging.shutdown does this at exit
    assert stream.getvalue().splitlines() == ["line 0", "line 1", "line 2", "line 3"]


def test_a_warning_is_written_at_once_with_the_lines_before_it() -> None:
    stream = CountingStream()
    log = _logger(BufferedLines(stream, interval=60), "test.access.warning")
    log.info("first")
    assert stream.getvalue() == ""
    log.warning("trouble")
    assert stream.getvalue() == "first\ntrouble\n"


def test_a_lone_line_is_written_within_the_interval() -> None:
    stream = CountingStream()
    log = _logger(BufferedLines(stream, interval=0.05), "test.access.interval")
    log.info("alone")
    deadline = time.monotonic() + 5
    while "alone" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "alone\n"


def test_the_cached_time_reads_as_the_stock_formatter_does() -> None:
    stock = logging.Formatter("%(asctime)s %(message)s")
    cached = SecondsCachedFormatter("%(asctime)s %(message)s")
    for created in (1_796_000_000.0, 1_796_000_000.25, 1_796_000_001.999):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert cached.format(record) == stock.format(record)
