#!/usr/bin/env python3
"""moto's server (`moto_server`, same arguments and banner) with CloudWatch's Smithy RPC v2 CBOR
translated for it (`cbor_json.py`): aws-sdk-cloudwatch speaks only CBOR, moto 5.2.5 only JSON and
query. Every bare moto the tests, `scripts/demo`, `scripts/bench` and `scripts/start-emulator` start
runs through this; run it with the virtualenv's Python, which has moto.

    .venv/bin/python tests/support/moto_cbor.py -H 127.0.0.1 -p 0
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto.server  # noqa: E402

import cbor_json  # noqa: E402


def main() -> None:
    dispatcher = moto.server.DomainDispatcherApplication
    moto.server.DomainDispatcherApplication = lambda create_app: cbor_json.Middleware(dispatcher(create_app))
    cbor_json.model()  # fail at start, not at the first CloudWatch call, if the model is missing
    moto.server.main(sys.argv[1:])


if __name__ == "__main__":
    main()
