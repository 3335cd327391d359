"""The Google Reader API of `aggregator serve`, for feed reader apps (NetNewsWire, Reeder,
Read You, newsboat's FeedHQ mode).

- `passwords`: scrypt hashes of API passwords (pure), used by the config too;
- `ids`: item ids, stream ids and continuation tokens (pure);
- `auth`: logins, signed tokens, the lockout (pure but for the clock);
- `streams`: a request's stream parameters -> what to read (pure);
- `documents`: items as Google Reader JSON and Atom (pure, through `render/`);
- `api`: `ReaderApi`, a request in, the store read or marked, an answer out (the edge).

Kept free of imports here: `config` imports `passwords`, and must not pull in the rest.
"""
