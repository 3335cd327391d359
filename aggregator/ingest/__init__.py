"""Ingest: feed bytes in (fetch, the only network code), entries ready for dedup out.

fetch.py            bounded HTTP and local-file reads
fetch_pool.py       fetches at once, per host, with hard deadlines
prefilter.py        byte-level repairs before feedparser
jsonfeed_reader.py  JSON Feed 1.0/1.1 -> ParsedFeed
parse.py            bytes -> ParsedFeed (feedparser, JSON Feed)
normalize.py        untrusted strings -> clean text, HTML, dates, URLs
prepare.py          an entry's signatures and term vector
parse_worker.py     parse and prepare in worker processes with limits
"""
